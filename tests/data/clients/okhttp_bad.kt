// Malformed on purpose: CertificatePinner.Builder.add throws, the client is never built.
import okhttp3.CertificatePinner

val pinner = CertificatePinner.Builder()
    .add("example.*", "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=")
    .add("api.example.com", "sha512/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=")
    .add("www.example.com", "sha256/AAAA")
    .build()
