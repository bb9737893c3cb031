// Pattern: the bare base64 in one constant, the OkHttp pin built with a string
// template ("sha256/$NAME"), and a backup spelled with braces ("sha256/${NAME}").
// Seen in Taiful2514/DroidconSecuritySample app/src/main/java/.../util/Constant.kt.
package com.example.security

import okhttp3.CertificatePinner

object Constant {
    const val SSL_PIN = "0Bbh/jEZSKymTy3kTOhsmlHKBB32EDu1KojrP3YfV9c="
    const val BACKUP_KEY = "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="
    const val OKHTTP_SSL_PIN = "sha256/$SSL_PIN"
    const val PINNING_URL = "json.example.com"
}

fun pinner(): CertificatePinner = CertificatePinner.Builder()
    .add(Constant.PINNING_URL, Constant.OKHTTP_SSL_PIN, "sha256/${Constant.BACKUP_KEY}")
    .build()
