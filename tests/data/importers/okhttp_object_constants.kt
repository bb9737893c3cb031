// Pattern: an `object` of const vals (domain, leaf, intermediate, root) used qualified
// by a pinner in the same file.
// Seen in menjoo/Android-SSL-Pinning-WebViews and moheshmohan/Pinning_demo
// (app/src/main/java/.../config/Pinning.kt; there the pinner lives in another file).
package com.example.webview

import okhttp3.CertificatePinner

object Pinning {
    const val DOMAIN = "example.org"
    const val CERT_LEAF = "sha256/K7rZOrXHknnsEhUH8nLL4MZkejquUuIvOIr6tCa0rbo="
    const val CERT_INTERMEDIATE = "sha256/bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc="
    const val CERT_CA = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
}

class PinnedWebClient {
    val pinner: CertificatePinner = CertificatePinner.Builder()
        .add(Pinning.DOMAIN, Pinning.CERT_LEAF, Pinning.CERT_INTERMEDIATE, Pinning.CERT_CA)
        .build()
}
