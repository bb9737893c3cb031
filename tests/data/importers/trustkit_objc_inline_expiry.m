// Pattern: the configuration written inline in the initialiser call, with
// kTSKExpirationDate and two key algorithms, report-only (kTSKEnforcePinning @NO).
// Seen in irccloud/ios ([TrustKit initializeWithConfiguration:@{... kTSKExpirationDate:
// @"2020-10-09" ...}] in its network connection class).
#import <TrustKit/TrustKit.h>

@implementation NetworkConnection

- (instancetype)init {
    self = [super init];
    if (self) {
        [TrustKit initializeWithConfiguration:@{
            kTSKSwizzleNetworkDelegates: @YES,
            kTSKPinnedDomains : @{
                @"chat.example.com" : @{
                    kTSKExpirationDate: @"2027-10-09",
                    kTSKEnforcePinning : @NO,
                    kTSKPublicKeyAlgorithms : @[kTSKAlgorithmRsa2048, kTSKAlgorithmEcDsaSecp256r1],
                    kTSKPublicKeyHashes : @[
                        @"K7rZOrXHknnsEhUH8nLL4MZkejquUuIvOIr6tCa0rbo=",
                        @"bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc=",
                    ]
                }
            }
        }];
    }
    return self;
}

@end
