"""Chinese words for the codes the lists store: what staff and leaders read on pages and in Excel."""

from __future__ import annotations

SIDES = {"enterprise": "企业", "community": "社区", "": "未注明"}
STATUSES = {"open": "开放", "closed": "已关闭", "pending": "待审核", "accepted": "已接受", "rejected": "已拒绝",
            "superseded": "已被替代", "withdrawn": "已撤回", "active": "进行中", "completed": "已完成",
            "cancelled": "已终止", "queued": "排队中", "running": "运行中", "done": "已完成", "failed": "失败"}
RINGS = {"grid": "本网格", "area": "本片区", "street": "本街道", "district": "全区"}
GRID_KINDS = {"point": "点", "area": "面", "block": "片"}
ROLES = {"admin": "管理员", "analyst": "分析员", "staff": "网格员", "leader": "街道领导", "platform": "平台"}
