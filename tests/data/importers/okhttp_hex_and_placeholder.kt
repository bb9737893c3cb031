// Pattern: pins OkHttp accepts but that can never match: a hex SHA-256 written after
// "sha256/" (decodes to 48 bytes) and an all-"A" placeholder of the wrong length, next
// to a real one; a placeholder word OkHttp's lenient decoder still reads (URL-safe
// alphabet: 17 bytes); and a placeholder that is not base64 at all, which OkHttp
// rejects: the whole pinner is never built.
// Seen: cashapp/certifikit PR #88 printed "Pin: sha256/8d0253..." in hex; placeholder
// pins ("sha256/AAAA...", "sha256/REPLACE_WITH_BASE64_PIN", "<...>") in public samples.
package com.example.pinning

import okhttp3.CertificatePinner

val pinner = CertificatePinner.Builder()
    .add("hex.example.com",
        "sha256/8d02536c887482bc34ff54e41d2ba659bf85b341a0a20afadb5813dcfbcf286d",
        "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=")
    .add("todo.example.com", "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    .add("draft.example.com", "sha256/REPLACE_WITH_BASE64_PIN")
    .add("broken.example.com", "sha256/<your pin here>")
    .build()
