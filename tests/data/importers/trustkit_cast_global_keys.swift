//
//  Pattern: per-domain keys written at the top level (TrustKit ignores them there),
//  the deprecated kTSKPublicKeyAlgorithms, and the literal cast `as [String : Any]`.
//  Seen in hassanelgibali/AvTabar Example/Pods/VFEG-NetworkManager/.../CertificatePinner.swift
//  and dmi3j/SSL-Pinning-Demo SSL-Pinning-Demo/AppDelegate.swift.
//
import Foundation
import TrustKit

public class CertificatePinner {
    public class func pinCertificates() {
        let trustKitConfig = [
            kTSKEnforcePinning: true,
            kTSKIncludeSubdomains: true,
            kTSKSwizzleNetworkDelegates: false,
            kTSKPinnedDomains: [
                "mobile.example.net": [
                    kTSKPublicKeyAlgorithms: [kTSKAlgorithmRsa2048],
                    kTSKPublicKeyHashes: [
                        "++MBgDH5WGvL9Bcn5Be30cRcL0f5O+NyoXuWtQdX1aI=",
                        "f0KW/FtqTjs108NpYj42SrGvOB2PpxIVM8nWxjPqJGE=",
                        "i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY="
                    ],
                ]
            ]
            ] as [String : Any]
        TrustKit.initSharedInstance(withConfiguration:trustKitConfig)
    }
}
