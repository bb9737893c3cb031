// Pattern: the same apply/forEach, but the constants object is in another file.
// Seen in a public attendance app (system/time/ServerTimeClient.kt, NetworkConstants.TIME_API_PINS).
package com.example.time

import okhttp3.CertificatePinner
import okhttp3.OkHttpClient

class ServerTimeClient {
    private fun createPinnedClient(): OkHttpClient {
        val certificatePinner = CertificatePinner.Builder().apply {
            NetworkConstants.TIME_API_PINS.forEach { pin ->
                add(NetworkConstants.TIME_API_HOST, pin)
            }
        }.build()
        return OkHttpClient.Builder().certificatePinner(certificatePinner).build()
    }
}
