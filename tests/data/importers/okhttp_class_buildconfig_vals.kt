// Pattern: the same class after the values moved into BuildConfig fields: nothing
// is left to read in the source.
// Seen in a later version of the SDK above (private val HOST = BuildConfig.host).
package com.example.sdk.network

import com.example.sdk.BuildConfig
import okhttp3.CertificatePinner

class Pinner {
    private val HOST = BuildConfig.host
    private val PIN = BuildConfig.certificatePin

    fun getPinner(): CertificatePinner {
        return CertificatePinner.Builder()
            .add(HOST, PIN)
            .build()
    }
}
