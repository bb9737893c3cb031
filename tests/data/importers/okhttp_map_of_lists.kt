// Pattern: a private mapOf(host to listOf(pins)) iterated with a destructuring lambda.
// Seen in a public Android LLM app (com.nervesparks.iris data/network/CertificatePins.kt).
package com.example.network

import okhttp3.CertificatePinner

object CertificatePins {
    private val pins = mapOf(
        "models.example.com" to listOf(
            "sha256/hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc="
        ),
        "api.example.org" to listOf(
            "sha256/i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY="
        )
    )

    fun build(): CertificatePinner {
        val builder = CertificatePinner.Builder()
        pins.forEach { (host, hashes) -> builder.add(host, *hashes.toTypedArray()) }
        return builder.build()
    }
}
