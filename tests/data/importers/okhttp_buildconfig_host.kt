// Pattern: literal pins, but the host comes from BuildConfig (a Gradle field).
// Seen in the TimeLimit Android app (package io.timelimit.pinning, CertificatePinning.kt).
package com.example.pinning

import com.example.app.BuildConfig
import okhttp3.CertificatePinner

object CertificatePinning {
    val configuration = CertificatePinner.Builder()
            .add(
                    BuildConfig.serverDomain,
                    "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=",
                    "sha256/diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="
            )
            .build()
}
