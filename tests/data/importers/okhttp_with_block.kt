// Pattern: with(CertificatePinner.Builder()) { add(...); build() } and a local alias
// (val h = HOST). Seen: no public example turned up in the code corpus; the pattern is
// named in issue 12 (`with(...)` blocks, `val h = HOST`) and written here from Kotlin's
// scope-function rules (`with` makes the builder the receiver of `add`).
package com.example.pinning

import okhttp3.CertificatePinner

private const val HOST = "pay.example.com"
private const val PRIMARY = "sha256/K7rZOrXHknnsEhUH8nLL4MZkejquUuIvOIr6tCa0rbo="

fun paymentsPinner(): CertificatePinner = with(CertificatePinner.Builder()) {
    val h = HOST
    add(h, PRIMARY)
    add(h, "sha256/" + "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=")
    build()
}
