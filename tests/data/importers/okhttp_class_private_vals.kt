// Pattern: private vals of a class (itself named CertificatePinner) hold host and pin;
// the pin is the base64 of an X25519 SubjectPublicKeyInfo (44 bytes), not of its
// SHA-256: OkHttp accepts it and it can never match.
// Seen in a public SDK (com.seamlabs.admore core/network/CertificatePinner.kt).
package com.example.sdk.network

import javax.inject.Inject
import javax.inject.Singleton

@Singleton
class CertificatePinner @Inject constructor() {
    private val HOST = "ads.example.com"
    private val PIN = "sha256/MCowBQYDK2VuAyEAq9m6BNi+QtbXyIm/SYmZmJqof1d6xdcv/+obsEHcqSI="

    fun getPinner(): okhttp3.CertificatePinner {
        return okhttp3.CertificatePinner.Builder()
            .add(HOST, PIN)
            .build()
    }
}
