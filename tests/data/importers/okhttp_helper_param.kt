// Pattern: a helper taking the builder as a parameter; the pins are a CSV parsed at
// run time, but one host is also pinned with literals in the same file.
// Seen in public Kotlin code (private fun addPins(builder: CertificatePinner.Builder,
// baseUrl: String, pins: List<String>) ... builder.add(host, *pins.toTypedArray())).
package com.example.rates

import okhttp3.CertificatePinner

object Pins {
    fun pinner(csv: String): CertificatePinner {
        val builder = CertificatePinner.Builder()
        addPins(builder, "https://rates.example.com", parsePins(csv))
        builder.add("static.example.com", "sha256/++MBgDH5WGvL9Bcn5Be30cRcL0f5O+NyoXuWtQdX1aI=", "sha256/f0KW/FtqTjs108NpYj42SrGvOB2PpxIVM8nWxjPqJGE=")
        return builder.build()
    }

    private fun parsePins(csv: String): List<String> = csv.split(',').map { it.trim() }

    private fun addPins(builder: CertificatePinner.Builder, baseUrl: String, pins: List<String>) {
        val host = java.net.URI(baseUrl).host
        builder.add(host, *pins.toTypedArray())
    }
}
