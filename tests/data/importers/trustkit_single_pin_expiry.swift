//
//  Pattern: one pin per domain with kTSKExpirationDate and the default kTSKEnforcePinning
//  (YES): TrustKit raises "less than 2 pins" at start-up.
//  Seen in afterpay/sdk-ios Example/Example/Shared/Dependencies.swift.
//
import Foundation
import TrustKit

func initializeDependencies() {
  let configuration: [String: Any] = [
    kTSKSwizzleNetworkDelegates: false,
    kTSKPinnedDomains: [
      "checkout.example.com": [
        kTSKExpirationDate: "2027-06-25",
        kTSKPublicKeyHashes: ["bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc="],
      ],
      "checkout.sandbox.example.com": [
        kTSKExpirationDate: "2026-07-05",
        kTSKPublicKeyHashes: ["0Bbh/jEZSKymTy3kTOhsmlHKBB32EDu1KojrP3YfV9c="],
      ],
    ],
  ]

  TrustKit.initSharedInstance(withConfiguration: configuration)
}
