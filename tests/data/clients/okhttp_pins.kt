// OkHttp CertificatePinner declarations for pinaudit's parser tests (pinning-semantics §11).
package com.example.pinning

import okhttp3.CertificatePinner
import okhttp3.OkHttpClient

private const val ISRG_ROOT_X1 = "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
private const val ISRG_ROOT_X2 = "sha256/diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="

object Pinning {
    val pinner: CertificatePinner = CertificatePinner.Builder()
        // exact: api.example.com gets these AND the *.example.com pins (a union)
        .add("api.example.com", "sha256/bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc=")
        .add(
            "*.example.com",
            ISRG_ROOT_X1,
            ISRG_ROOT_X2,
        )
        // ** includes the apex: example.net, a.example.net, a.b.example.net
        .add("**.example.net", "sha256/hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=",
            "sha256/mEflZT5enoR1FuXLgYYGqnVEoZvmf9c2bVBpiOjYQ0c=")
        // legacy SHA-1 pin of ISRG Root X1
        .add("legacy.example.org", "sha1/+BZRPP0bRJ8uayihlyIfuB9RTjw=", ISRG_ROOT_X2)
        // Documented rejects (OkHttp throws IllegalArgumentException), kept as comments:
        // .add("example.*", ISRG_ROOT_X1)                 -> Unexpected pattern: example.*
        // .add("*.*.example.com", ISRG_ROOT_X1)           -> Unexpected pattern
        // .add("https://example.com/", ISRG_ROOT_X1)      -> Invalid pattern
        // .add("example.com:8443", ISRG_ROOT_X1)          -> Invalid pattern
        // .add("example.com", "sha512/AAAA")              -> pins must start with 'sha256/' or 'sha1/'
        /* .add("block.example.com", "md5/AAAA") */
        .build()

    val client: OkHttpClient = OkHttpClient.Builder().certificatePinner(pinner).build()
}
