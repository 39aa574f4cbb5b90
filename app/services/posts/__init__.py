"""Posts: what a brand wants to say, read, written and reviewed. One module per job:

- `reads`: one post by id, the list (read lean) and a post's activity;
- `writes`: create, edit and delete, the accounts a post goes to and its variants;
- `review`: submit, approve and reject, by the brand's approval mode;
- `visibility`: which posts a brand's client sees.

The statuses a post moves through, and the one way it moves, are in `app.services.lifecycle`;
when it goes out, in `app.services.scheduling`. The views use the names below, as `posts.…`.
"""

from app.services.posts.reads import (
    activity_statement,
    get_post_or_404,
    list_items,
    list_page_rows,
    list_statement,
)
from app.services.posts.review import approve, reject, submit
from app.services.posts.visibility import (
    client_may_see,
    client_visible,
    media_visible_to,
    sees_every_post,
    visible_to,
)
from app.services.posts.writes import (
    create_post,
    delete_post,
    remove_target,
    set_variant,
    update_post,
)

__all__ = [
    "activity_statement",
    "approve",
    "client_may_see",
    "client_visible",
    "create_post",
    "delete_post",
    "get_post_or_404",
    "list_items",
    "list_page_rows",
    "list_statement",
    "media_visible_to",
    "reject",
    "remove_target",
    "sees_every_post",
    "set_variant",
    "submit",
    "update_post",
    "visible_to",
]
