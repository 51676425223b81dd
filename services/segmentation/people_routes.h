/* The route functions of the tags part of issue 10 (api.c lists them):
 * tags, fields, templates and the 1:1 talk. Each follows seg_route_fn:
 * true when rest is its path (and it answered), else false. Admin-API
 * worker threads. */
#ifndef KIZUNA_SEGMENTATION_PEOPLE_ROUTES_H
#define KIZUNA_SEGMENTATION_PEOPLE_ROUTES_H

#include <stdbool.h>

#include "app.h"

bool tags_route(struct seg_request *r);          /* /tags, /tags/{name} */
bool friend_tags_route(struct seg_request *r);   /* /friends/{u}/tags[/{name}] */
bool fields_route(struct seg_request *r);        /* /fields, /fields/{name} */
bool friend_fields_route(struct seg_request *r); /* /friends/{u}/fields */
bool templates_route(struct seg_request *r);     /* /templates, /templates/{id} */
bool talk_route(struct seg_request *r);          /* /friends/{u}/messages */

#endif
