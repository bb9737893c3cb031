// Pattern: a Java local variable holds the host, every add() names it, and one pin
// is written without its base64 padding (OkHttp's decoder accepts it).
// Seen in chiuki/mockwebserver-demo app/src/main/java/com/sqisland/mockwebserver_demo/OkHttp.java.
package com.example.pinning;

import okhttp3.CertificatePinner;
import okhttp3.OkHttpClient;

public final class PinnedHttp {
  private PinnedHttp() {}

  static CertificatePinner pinner() {
    String hostname = "api.example.com";
    return new CertificatePinner.Builder()
        .add(hostname, "sha256/bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc")
        .add(hostname, "sha256/C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=")
        .add(hostname, "sha256/diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI=")
        .build();
  }

  static OkHttpClient client() {
    return new OkHttpClient.Builder().certificatePinner(pinner()).build();
  }
}
