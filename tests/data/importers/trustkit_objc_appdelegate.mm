// Pattern: an Objective-C++ AppDelegate of a React Native template: NSDictionary
// literal with @YES flags, kTSKDisableDefaultReportUri and trailing commas.
// Seen in AgoraIO-Community/app-builder-core template/ios/HelloWorld/AppDelegate.mm.
#import "AppDelegate.h"
#import <TrustKit/TrustKit.h>

@implementation AppDelegate

- (BOOL)application:(UIApplication *)application didFinishLaunchingWithOptions:(NSDictionary *)launchOptions
{
  // Initialize TrustKit for SSL pinning
  NSDictionary *trustKitConfig =
  @{
    kTSKSwizzleNetworkDelegates: @YES,
    kTSKPinnedDomains: @{
      @"services.example.com" : @{
        kTSKIncludeSubdomains: @YES,
        kTSKEnforcePinning: @YES,
        kTSKDisableDefaultReportUri: @YES,
        kTSKPublicKeyHashes : @[
          @"hxqRlPTu1bMS/0DITB1SSu0vd4u/8l8TjPgfaAp63Gc=",
          @"mEflZT5enoR1FuXLgYYGqnVEoZvmf9c2bVBpiOjYQ0c=",
        ],
      },
    }
  };
  [TrustKit initSharedInstanceWithConfiguration:trustKitConfig];
  return [super application:application didFinishLaunchingWithOptions:launchOptions];
}

@end
