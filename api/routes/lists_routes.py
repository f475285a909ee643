"""The three list routers: grids, needs and resources."""

from api.routes.listing import build
from api.schemas import (
                         GridCreate,
                         GridPublic,
                         GridUpdate,
                         NeedCreate,
                         NeedPublic,
                         NeedUpdate,
                         ResourceCreate,
                         ResourcePublic,
                         ResourceUpdate,
)

grids = build("grids", GridCreate, GridUpdate, GridPublic)
needs = build("needs", NeedCreate, NeedUpdate, NeedPublic)
resources = build("resources", ResourceCreate, ResourceUpdate, ResourcePublic)
