// Pattern: an AppDelegate whose TrustKit set-up is commented out: given as the trustkit
// file, there is no configuration in it.
// Seen in a public React Native AppDelegate.m (//[self initTrustKit]; and the method
// body commented line by line).
#import "AppDelegate.h"
#import <TrustKit/TrustKit.h>

@implementation AppDelegate

- (BOOL)application:(UIApplication *)application didFinishLaunchingWithOptions:(NSDictionary *)launchOptions
{
  //[self initTrustKit];
  return [super application:application didFinishLaunchingWithOptions:launchOptions];
}

//- (void)initTrustKit {
//  NSDictionary *trustKitConfig =
//  @{
//    kTSKSwizzleNetworkDelegates: @YES,
//    kTSKPinnedDomains : @{
//      @"api.example.com" : @{
//        kTSKPublicKeyHashes : @[@"C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M=", @"diGVwiVYbubAI3RW4hB9xU8e/CH2GnkuvVFZE8zmgzI="],
//      },
//    }
//  };
//  [TrustKit initSharedInstanceWithConfiguration:trustKitConfig];
//}

@end
