// Pattern: domain keys are `let` constants of the same file and the flags are
// NSNumber(value: true) rather than Swift booleans.
// Seen in public Swift code (let trustKitConfig = [kTSKPinnedDomains: [baseDomain:
// [kTSKIncludeSubdomains: NSNumber(value: true), ...], filesBaseDomain: [...]]]).
import TrustKit

let baseDomain = "example.com"
let filesBaseDomain = "files.example.net"

let trustKitConfig: [String: Any] = [
    kTSKPinnedDomains: [
        baseDomain: [
            kTSKIncludeSubdomains: NSNumber(value: true),
            kTSKEnforcePinning: NSNumber(value: true),
            kTSKPublicKeyHashes: [
                "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=",
                "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI=",
                "sCkq5UWXjg+7mKu9lMhhYF5bGLsy7VI/UNW3tccdR7w="
            ]
        ],
        filesBaseDomain: [
            kTSKIncludeSubdomains: NSNumber(value: false),
            kTSKEnforcePinning: NSNumber(value: false),
            kTSKPublicKeyHashes: [
                "++MBgDH5WGvL9Bcn5Be30cRcL0f5O+NyoXuWtQdX1aI="
            ]
        ]
    ]
]
