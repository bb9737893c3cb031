// Pattern: a static (not final) String field for the wildcard host, one pin only.
// Seen in marakarma-git/xl-react-native android/app/src/main/java/com/dcp_mobile_v4/OkHttpCertPin.java
// (a React Native OkHttpClientFactory).
package com.example.rn;

import okhttp3.CertificatePinner;
import okhttp3.OkHttpClient;

public class PinnedClientFactory {
    private static String hostname = "*.example.net";

    public OkHttpClient create() {
        CertificatePinner certificatePinner = new CertificatePinner.Builder()
                .add(hostname, "sha256/NYbU7PBwV4y9J67c4guWTki8FJ+uudrXL0a4V4aRcrg=")
                .build();
        return new OkHttpClient.Builder().certificatePinner(certificatePinner).build();
    }
}
