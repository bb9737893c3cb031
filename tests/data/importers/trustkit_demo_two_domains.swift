/*
 Pattern: the Swift configuration of TrustKit's own demo: a typed [String: Any]
 literal, comments between entries, a subtree policy with report URIs and an
 exact one with a live pin and a backup.
 Seen in datatheorem/TrustKit TrustKitDemo/TrustKitDemo-Swift/AppDelegate.swift
 (and copied into lammax/SSLPin TestSSLPin/AppDelegate.swift).
 */
import UIKit
import TrustKit

@UIApplicationMain
class AppDelegate: UIResponder, UIApplicationDelegate {
    func application(_ application: UIApplication, didFinishLaunchingWithOptions launchOptions: [UIApplication.LaunchOptionsKey: Any]?) -> Bool {
        let trustKitConfig: [String: Any] = [
            kTSKSwizzleNetworkDelegates: false,
            kTSKPinnedDomains: [
                "example.com": [
                    kTSKEnforcePinning: true,
                    kTSKIncludeSubdomains: true,
                    // the live intermediate's key, then the backup
                    kTSKPublicKeyHashes: [
                        "NYbU7PBwV4y9J67c4guWTki8FJ+uudrXL0a4V4aRcrg=",
                        "0Bbh/jEZSKymTy3kTOhsmlHKBB32EDu1KojrP3YfV9c="
                    ],
                    kTSKReportUris: ["https://reports.example.com/trustkit"],
                ],
                "www.example.org": [
                    kTSKEnforcePinning: true,
                    kTSKPublicKeyHashes: [
                        "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=",
                        "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="
                    ],
                ]
            ]]
        TrustKit.initSharedInstance(withConfiguration: trustKitConfig)
        return true
    }
}
