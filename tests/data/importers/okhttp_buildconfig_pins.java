// Pattern: the pins come from BuildConfig, the host is a literal.
// Seen in a public Android sample (package com.pasc.sample.log, PinnerProxy.java).
package com.example.sample;

import okhttp3.CertificatePinner;

public class PinnerProxy {
  public static CertificatePinner pinner() {
    return new CertificatePinner.Builder().add("*.example.org", BuildConfig.CERT_FINGERS)
        .build();
  }
}
