// Pattern: the pins in a private arrayOf(...) spread into add()'s vararg with `*`.
// Seen in a public health app (com.esiri.esiriplus core/network/security/CertificatePinning.kt).
package com.example.network.security

import okhttp3.CertificatePinner

object CertificatePinning {
    private val PIN_HASHES = arrayOf(
        "sha256/hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=",
        "sha256/mEflZT5enoR1FuXLgYYGqnVEoZvmf9c2bVBpiOjYQ0c=",
    )

    fun createCertificatePinner(): CertificatePinner =
        CertificatePinner.Builder()
            .add("*.db.example.co", *PIN_HASHES)
            .build()
}
