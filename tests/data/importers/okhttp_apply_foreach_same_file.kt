// Pattern: CertificatePinner.Builder().apply { LIST.forEach { pin -> add(HOST, pin) } }
// over constants of an object in the same file.
// Seen in a public attendance app (system/time/ServerTimeClient.kt), where the
// constants object lives in another file (see okhttp_apply_foreach_other_file.kt).
package com.example.time

import okhttp3.CertificatePinner
import okhttp3.OkHttpClient

object NetworkConstants {
    const val TIME_API_HOST = "time.example.com"
    val TIME_API_PINS = listOf(
        "sha256/sCkq5UWXjg+7mKu9lMhhYF5bGLsy7VI/UNW3tccdR7w=",
        "sha256/diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI=",
    )
}

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
