// Pattern: a subtree policy with an excluded subdomain (kTSKExcludeSubdomainFromParentPolicy,
// whose literal key is "kSKExcludeSubdomainFromParentPolicy"), and an expiration date.
// Seen in datatheorem/TrustKit's documented keys (TrustKit/TSKTrustKitConfig.m,
// docs/getting-started.md) and apps that unpin a legacy host under their domain.
import TrustKit

func startPinning() {
    let config: [String: Any] = [
        kTSKSwizzleNetworkDelegates: false,
        kTSKPinnedDomains: [
            "example.net": [
                kTSKIncludeSubdomains: true,
                kTSKExpirationDate: "2027-06-30",
                kTSKPublicKeyHashes: ["C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=", "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="],
            ],
            "legacy.example.net": [
                kTSKExcludeSubdomainFromParentPolicy: true
            ],
        ],
    ]
    TrustKit.initSharedInstance(withConfiguration: config)
}
