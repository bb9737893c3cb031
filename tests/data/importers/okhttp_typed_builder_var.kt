// Pattern: a builder held in a typed var, filled in nested for-loops over pins
// returned at run time by an SDK ("sha256/$pin" templates).
// Seen in a public Approov integration (buildCertificatePinner(): var pinBuilder:
// CertificatePinner.Builder ... for ((key, value) in pins) ... pinBuilder.add(key, "sha256/$pin")).
package com.example.approov

import okhttp3.CertificatePinner

class PinningClient {
    private fun buildCertificatePinner(): CertificatePinner {
        var pinBuilder: CertificatePinner.Builder = CertificatePinner.Builder()
        val pins: Map<String, List<String>> = Attestation.getPins("public-key-sha256")
        for ((key, value) in pins) {
            for (pin in value) {
                pinBuilder.add(key, "sha256/$pin")
            }
        }
        return pinBuilder.build()
    }
}
