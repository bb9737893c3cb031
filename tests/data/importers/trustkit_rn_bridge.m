// Pattern: a React Native native module that pins whatever domain and hashes the
// JavaScript side passes at run time: nothing to import from this file.
// Seen in a public React Native security module (addSSLPinning:publicKeyHashes:resolve:reject:).
#import <React/RCTBridgeModule.h>
#import <TrustKit/TrustKit.h>

@implementation SecurityModule

RCT_EXPORT_MODULE();

- (void)addSSLPinning:(NSString *)domain
      publicKeyHashes:(NSArray *)publicKeyHashes
              resolve:(RCTPromiseResolveBlock)resolve
               reject:(RCTPromiseRejectBlock)reject {

  NSDictionary *trustKitConfig = @{
    kTSKSwizzleNetworkDelegates : @YES,
    kTSKPinnedDomains : @{
      domain : @{
        kTSKPublicKeyHashes : publicKeyHashes,
        kTSKIncludeSubdomains : @YES,
        kTSKEnforcePinning : @YES,
      }
    }
  };

  [TrustKit initSharedInstanceWithConfiguration:trustKitConfig];
  resolve(nil);
}

@end
