//
//  Pattern: pins as `const NSString *` globals named after their CA, reused by two
//  domains; a report URI constant; kTSKPublicKeyAlgorithms still present.
//  Seen in a public Objective-C app (CertValidator.m, "Bal", Balanced Software).
//
#import "CertValidator.h"
#import <TrustKit/TrustKit.h>

const NSString *reportUri = @"https://reports.example.com/cert";

// Let's Encrypt
const NSString *isrgRootX1 = @"C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="; // ISRG Root X1
const NSString *isrgRootX2 = @"diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="; // ISRG Root X2

// DigiCert
const NSString *digiCertGlobalRootG2 = @"i7WTqTvh0OioIruIfFR4kMPnBqrS2rdiVPl/s2uC/CY="; // DigiCert Global Root G2

@implementation CertValidator

- (instancetype)init {
    if (self = [super init]) {
        NSDictionary *trustKitConfig =
        @{kTSKSwizzleNetworkDelegates: @NO,
          kTSKPinnedDomains : @{
                  @"api.example.com" : @{
                          kTSKEnforcePinning : @YES,
                          kTSKPublicKeyAlgorithms : @[kTSKAlgorithmRsa2048],
                          kTSKPublicKeyHashes : @[isrgRootX1, isrgRootX2],
                          kTSKReportUris : @[reportUri]
                          },
                  @"www.example.com" : @{
                          kTSKEnforcePinning : @YES,
                          kTSKPublicKeyHashes : @[digiCertGlobalRootG2, isrgRootX1]
                          }
                  }};
        [TrustKit initSharedInstanceWithConfiguration:trustKitConfig];
    }
    return self;
}

@end
