/* The front door of segmentation's admin API: a channel it has not heard
 * of, or another tenant's, is 404 on every path; a known one with no such
 * route is 404 too. */
#include <criterion/criterion.h>

#include "seg_itest.h"

TestSuite(seg_api, .timeout = 120, .fini = seg_itest_reap);

Test(seg_api, unknown_and_foreign_channels_are_404)
{
    seg_itest_start("api", NULL);
    seg_itest_channel("1600000001", "tenant-a", "Asia/Tokyo");
    cr_expect_eq(
        seg_itest_call("tenant-b", "admin", "GET", "/v1/channels/1600000001/nothing", NULL, NULL),
        404, "another tenant's channel");
    cr_expect_eq(
        seg_itest_call("tenant-a", "admin", "GET", "/v1/channels/1699999999/nothing", NULL, NULL),
        404, "an unknown channel");
    cr_expect_eq(
        seg_itest_call("tenant-a", "admin", "GET", "/v1/channels/1600000001/nothing", NULL, NULL),
        404, "no such route");
    seg_itest_finish();
}
