// Pattern: hosts and hashes as comma-separated BuildConfig strings, split at run time,
// added in nested forEach loops inside .apply { }.
// Seen in public Kotlin code (certificatePinner(CertificatePinner.Builder().apply {
// BuildConfig.PINNED_URLS.split(",").forEach { ... add(pinnedUrl, hash) } })).
package com.example.net

import okhttp3.CertificatePinner
import okhttp3.OkHttpClient

fun OkHttpClient.Builder.pinned(): OkHttpClient.Builder = apply {
    certificatePinner(
        CertificatePinner.Builder().apply {
            BuildConfig.PINNED_URLS.split(",").forEach { pinnedUrl ->
                BuildConfig.PINNED_ROOT_CERTIFICATE_HASHES.split(",").forEach { hash ->
                    add(pinnedUrl, hash)
                }
            }
        }.build()
    )
}
