#define XXH_DISPATCH_DISABLE_REPLACE 1
#include <xxhash.h>
#include <xxh_x86dispatch.h>
