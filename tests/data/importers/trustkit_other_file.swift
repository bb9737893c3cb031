//
//  Pattern: the domain and one pin are constants declared in another file of the app;
//  only the backup pin is written here.
//  Seen in Notifire/iOS Notifire/Config/Config+TrustKit.swift (apiUrlString,
//  apiPublicKey2020Hash).
//
import Foundation
import TrustKit

extension Config {

    static let trustKitConfig: [String: Any] = [
        kTSKSwizzleNetworkDelegates: false,
        kTSKPinnedDomains: [
            apiUrlString: [
                kTSKPublicKeyHashes: [
                    // - Important: at least 2 keys, or TrustKit throws at launch.
                    apiPublicKey2021Hash,
                    "diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="
                ],
                kTSKDisableDefaultReportUri: true
            ]
        ]
    ]
}
