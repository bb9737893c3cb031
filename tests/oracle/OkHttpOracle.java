// The real OkHttp as an oracle for pinaudit's OkHttp verdicts.
//
// Usage: java -cp <classes>:okhttp.jar:okio.jar OkHttpOracle cases.json
//        java -cp <classes> OkHttpOracle --subjects certs.json   (how the JDK prints names)
//
// cases.json: {"cases": [{"id": str, "url": str, "address": str,
//                         "pins": [[pattern, [pin, ...]], ...], "roots": [PEM, ...]}]}
// For each case: a CertificatePinner with exactly those add() calls, a trust
// store holding exactly those roots, a Dns answering `address` for every name,
// one GET of `url`. One JSON object per line on stdout:
//   {"id", "outcome": "ok"|"builder_error"|"error", "class", "message",
//    "canary": {"outcome", "class", "message"}}
// After a success the case runs again with every pin replaced by a pin no
// certificate has (the canary): a pinning failure then means the pins applied
// (and its message shows the chain OkHttp checked), a success that no pin applied.
//
// Written for OkHttp 3.x (Debian's libokhttp-java); no dependency beyond
// okhttp and okio, so the JSON reader below is a small one of its own.

import java.io.ByteArrayInputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import okhttp3.CertificatePinner;
import okhttp3.ConnectionPool;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.Response;

public final class OkHttpOracle {
  private static final String CANARY_PIN = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

  public static void main(String[] args) throws Exception {
    if (args[0].equals("--subjects")) {
      subjects(args[1]);
      return;
    }
    String text = new String(Files.readAllBytes(Paths.get(args[0])), StandardCharsets.UTF_8);
    Map<?, ?> root = (Map<?, ?>) new Json(text).value();
    StringBuilder out = new StringBuilder();
    for (Object item : (List<?>) root.get("cases")) {
      Map<?, ?> c = (Map<?, ?>) item;
      Map<String, Object> result = new LinkedHashMap<>();
      result.put("id", c.get("id"));
      Map<String, Object> first = run(c, false);
      result.putAll(first);
      if ("ok".equals(first.get("outcome"))) {
        result.put("canary", run(c, true));
      }
      out.append(Json.write(result)).append('\n');
      System.out.print(out);
      System.out.flush();
      out.setLength(0);
    }
  }

  /** `--subjects file.json` ({"certs": [PEM, ...]}): each subjectDN.name, one JSON line each. */
  private static void subjects(String path) throws Exception {
    String text = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.UTF_8);
    CertificateFactory factory = CertificateFactory.getInstance("X.509");
    for (Object pem : (List<?>) ((Map<?, ?>) new Json(text).value()).get("certs")) {
      byte[] bytes = ((String) pem).getBytes(StandardCharsets.US_ASCII);
      X509Certificate cert =
          (X509Certificate) factory.generateCertificate(new ByteArrayInputStream(bytes));
      System.out.println(Json.write(cert.getSubjectDN().getName()));
    }
  }

  private static Map<String, Object> run(Map<?, ?> c, boolean canary) {
    Map<String, Object> result = new LinkedHashMap<>();
    CertificatePinner pinner;
    try {
      CertificatePinner.Builder builder = new CertificatePinner.Builder();
      for (Object entry : (List<?>) c.get("pins")) {
        List<?> pair = (List<?>) entry;
        List<?> pins = (List<?>) pair.get(1);
        String[] values = new String[pins.size()];
        for (int i = 0; i < values.length; i++) {
          values[i] = canary ? CANARY_PIN : (String) pins.get(i);
        }
        builder.add((String) pair.get(0), values);
      }
      pinner = builder.build();
    } catch (RuntimeException e) {
      result.put("outcome", "builder_error");
      describe(result, e);
      return result;
    }
    try {
      X509TrustManager trust = trustManager((List<?>) c.get("roots"));
      SSLContext tls = SSLContext.getInstance("TLS");
      tls.init(null, new TrustManager[] {trust}, null);
      byte[] address = InetAddress.getByName((String) c.get("address")).getAddress();
      OkHttpClient client =
          new OkHttpClient.Builder()
              .sslSocketFactory(tls.getSocketFactory(), trust)
              .certificatePinner(pinner)
              .dns(name -> Collections.singletonList(InetAddress.getByAddress(name, address)))
              .connectionPool(new ConnectionPool(0, 1, TimeUnit.SECONDS))
              .retryOnConnectionFailure(false)
              .connectTimeout(10, TimeUnit.SECONDS)
              .readTimeout(10, TimeUnit.SECONDS)
              .build();
      Request request = new Request.Builder().url((String) c.get("url")).build();
      try (Response response = client.newCall(request).execute()) {
        response.body().string();
        result.put("outcome", "ok");
        result.put("status", response.code());
      }
    } catch (Exception e) {
      result.put("outcome", "error");
      describe(result, e);
    }
    return result;
  }

  private static void describe(Map<String, Object> result, Throwable e) {
    result.put("class", e.getClass().getName());
    result.put("message", String.valueOf(e.getMessage()));
    Throwable cause = e.getCause();
    if (cause != null) {
      result.put("cause", cause.getClass().getName() + ": " + cause.getMessage());
    }
  }

  private static X509TrustManager trustManager(List<?> roots) throws Exception {
    CertificateFactory factory = CertificateFactory.getInstance("X.509");
    KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
    store.load(null, null);
    int n = 0;
    for (Object pem : roots) {
      byte[] bytes = ((String) pem).getBytes(StandardCharsets.US_ASCII);
      X509Certificate cert =
          (X509Certificate) factory.generateCertificate(new ByteArrayInputStream(bytes));
      store.setCertificateEntry("root" + n++, cert);
    }
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(store);
    for (TrustManager tm : tmf.getTrustManagers()) {
      if (tm instanceof X509TrustManager) {
        return (X509TrustManager) tm;
      }
    }
    throw new IllegalStateException("no X509TrustManager");
  }

  /** Just enough JSON: objects, arrays, strings, numbers, true/false/null. */
  static final class Json {
    private final String s;
    private int i;

    Json(String s) {
      this.s = s;
    }

    Object value() {
      skip();
      char ch = s.charAt(i);
      if (ch == '{') {
        Map<String, Object> map = new LinkedHashMap<>();
        i++;
        skip();
        if (s.charAt(i) == '}') {
          i++;
          return map;
        }
        while (true) {
          skip();
          String key = (String) value();
          skip();
          expect(':');
          map.put(key, value());
          skip();
          if (s.charAt(i++) == '}') {
            return map;
          }
        }
      }
      if (ch == '[') {
        List<Object> list = new ArrayList<>();
        i++;
        skip();
        if (s.charAt(i) == ']') {
          i++;
          return list;
        }
        while (true) {
          list.add(value());
          skip();
          if (s.charAt(i++) == ']') {
            return list;
          }
        }
      }
      if (ch == '"') {
        StringBuilder b = new StringBuilder();
        i++;
        while (true) {
          char c = s.charAt(i++);
          if (c == '"') {
            return b.toString();
          }
          if (c != '\\') {
            b.append(c);
            continue;
          }
          char e = s.charAt(i++);
          switch (e) {
            case 'n': b.append('\n'); break;
            case 'r': b.append('\r'); break;
            case 't': b.append('\t'); break;
            case 'b': b.append('\b'); break;
            case 'f': b.append('\f'); break;
            case 'u':
              b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
              i += 4;
              break;
            default: b.append(e);
          }
        }
      }
      int start = i;
      while (i < s.length() && "{}[],: \n\r\t".indexOf(s.charAt(i)) < 0) {
        i++;
      }
      String word = s.substring(start, i);
      if (word.equals("true")) return Boolean.TRUE;
      if (word.equals("false")) return Boolean.FALSE;
      if (word.equals("null")) return null;
      return Long.valueOf(word);
    }

    private void skip() {
      while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
        i++;
      }
    }

    private void expect(char c) {
      if (s.charAt(i++) != c) {
        throw new IllegalArgumentException("expected " + c + " at " + (i - 1));
      }
    }

    static String write(Object v) {
      if (v == null) return "null";
      if (v instanceof Number || v instanceof Boolean) return v.toString();
      if (v instanceof Map) {
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
          if (b.length() > 1) b.append(',');
          b.append(write(String.valueOf(e.getKey()))).append(':').append(write(e.getValue()));
        }
        return b.append('}').toString();
      }
      StringBuilder b = new StringBuilder("\"");
      for (char c : v.toString().toCharArray()) {
        if (c == '"' || c == '\\') {
          b.append('\\').append(c);
        } else if (c < 0x20 || c > 0x7e) {
          b.append(String.format("\\u%04x", (int) c));
        } else {
          b.append(c);
        }
      }
      return b.append('"').toString();
    }
  }
}
