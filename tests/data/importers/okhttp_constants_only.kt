// Pattern: a file of pin constants with no CertificatePinner in it (the pinner that
// uses them is elsewhere): given as the okhttp file, it is the wrong file.
// Seen in menjoo/Android-SSL-Pinning-WebViews app/src/main/java/.../config/Pinning.kt.
package com.example.webview.config

object Pinning {
    const val DOMAIN = "example.org"
    const val CERT_LEAF = "sha256/K7rZOrXHknnsEhUH8nLL4MZkejquUuIvOIr6tCa0rbo="
    const val CERT_CA = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
}
