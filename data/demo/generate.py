"""Write the bundled demo lists (grids, needs, resources) with a seeded random generator.

Everything here is invented for Duijie: street names are the real streets of Chengdu's
high-tech zone, the parks, towers, firms and posts are made up. Run from the project root:
    python data/demo/generate.py
The output is committed; the same seed always writes the same files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import opencc

SEED = 20261126
OUT = Path(__file__).resolve().parent

# street: (lat, lon) of its centre, in WGS84 degrees.
STREETS = {
    "桂溪街道": (30.5760, 104.0630),
    "芳草街道": (30.6090, 104.0460),
    "肖家河街道": (30.6190, 104.0350),
    "石羊街道": (30.5530, 104.0520),
    "中和街道": (30.5480, 104.1030),
    "合作街道": (30.7450, 103.9350),
    "西园街道": (30.7300, 103.9650),
}
BLOCK_NAMES = ["{s}核心街区", "{s}东片区"]
AREA_NAMES = ["云栖科技园", "锦程金融大厦", "星河创新广场", "蜀锦生活广场", "天梭产业园", "青禾孵化园",
              "银杏商务中心", "凤凰数字港", "锦江智造园", "芙蓉里综合体", "丝路国际中心", "青城数据谷",
              "梧桐创客汇", "南湖商务楼宇"]
POINT_NAMES = ["蓝鲸软件公司园区", "和康生物医药基地", "区政务服务中心", "新源电子厂区", "川能检测研究院",
               "天府通信大楼", "锦华医院", "高新实验学校", "盛达物流园", "智联汽车研发中心", "华芯半导体园区",
               "安和养老服务中心", "市场监管所", "未来社区党群服务中心", "芳邻社区", "石羊社区", "和美社区",
               "青年人才驿站", "创想动漫公司", "瑞丰食品公司", "众信律师事务所", "蓉城银行支行", "金沙幼儿园",
               "科创职业学院", "云帆网络公司", "天润物业公司", "康宁社区卫生服务站", "锦欣心理咨询中心",
               "众联人力资源公司", "万安保安公司", "城南停车管理公司", "鲜味团餐公司", "童心托育中心",
               "博雅会展公司", "长青志愿者协会", "智谷专利代理所", "创融融资租赁公司", "新航线科技公司",
               "睿思教育公司", "和顺社区", "锦绣社区", "桂花社区"]

# category: (need side, [need templates], [resource templates]); side "e" enterprise, "c" community, "*" either.
CATALOGUE = {
    "党务": ("*", ["{org}新成立党支部，需要党建指导员帮助规范组织生活", "园区流动党员较多，希望开展联合主题党日活动",
                  "{org}需要党务工作者培训，提升支部书记业务能力"],
               ["党群服务中心提供党建指导和组织生活规范辅导", "综合党委可牵头开展区域化党建联建共建活动",
                "专属网格党组织开放党员活动室，可承办主题党日"]),
    "政务": ("e", ["{org}办理工商变更和许可证续期，希望有专人代办帮办", "企业新员工落户和社保办理流程不清楚，需要政务咨询",
                  "外资企业需要了解备案和年报流程"],
               ["政务服务中心提供企业开办一站式帮办代办", "网格员上门提供社保、落户等政务咨询服务",
                "街道便民服务站可预约办理营业执照和许可事项"]),
    "政策申报": ("e", ["{org}想申报高新技术企业认定，需要政策解读和材料辅导", "初创企业希望了解研发费用加计扣除等扶持政策",
                    "{org}申请人才补贴和项目申报，缺少专业指导"],
                 ["企业服务中心每月举办政策宣讲会，一对一辅导项目申报", "科技服务机构提供高企认定和政策兑现辅导",
                  "专属网格服务专员推送惠企政策并协助申报"]),
    "商务": ("e", ["{org}寻找本地供应链合作伙伴，需要采购电子元器件", "企业新产品上市，希望对接商超和渠道资源",
                  "{org}需要举办产品发布会的场地和会展服务"],
               ["行业协会组织供需对接会，帮助企业拓展渠道", "会展公司提供发布会策划、场地布置和会务服务",
                "龙头企业开放供应链，寻找本地配套供应商"]),
    "法务": ("*", ["{org}遇到劳动合同纠纷，需要律师提供法律咨询", "小微企业签订合同前希望有法律顾问审核条款",
                  "居民遇到房屋租赁纠纷，需要免费法律援助"],
               ["律师事务所每周在党群服务站提供免费法律咨询", "法律服务团队为园区企业提供合同审核和法律体检",
                "公益律师进社区开展法律援助和普法讲座"]),
    "知识产权": ("e", ["{org}研发新技术，需要申请发明专利", "企业商标被抢注，需要知识产权维权帮助",
                    "科技公司希望开展知识产权质押融资"],
                 ["专利代理机构提供专利申请和商标注册服务", "知识产权服务站提供维权咨询和侵权预警",
                  "银行推出知识产权质押融资产品，额度最高500万元"]),
    "融资": ("e", ["{org}扩大生产需要流动资金贷款{n}00万元", "初创团队寻找天使投资和股权融资对接",
                  "企业购置设备希望采用融资租赁方式"],
               ["银行支行为科技型中小企业提供信用贷款和融资担保", "投资机构定期举办路演，对接股权融资",
                "融资租赁公司提供设备融资租赁服务"]),
    "人才": ("e", ["{org}急需招聘{n}名软件工程师和测试人员", "企业希望与高校合作建立实习基地，招收应届毕业生",
                  "新入职员工需要人才公寓和租房补贴信息"],
               ["人力资源公司提供招聘会和人才猎头服务", "职业学院与企业共建实习基地，每年输送毕业生",
                "青年人才驿站提供免费短期住宿和人才公寓申请指导"]),
    "空间": ("e", ["{org}团队扩张，需要{n}00平方米的办公场地", "初创企业需要共享会议室和路演场地",
                  "企业需要临时仓储空间存放设备"],
               ["孵化器提供低租金办公空间和共享工位", "商务楼宇开放共享会议室，可按小时预约",
                "产业园有闲置厂房和仓储空间可以出租"]),
    "技术": ("e", ["{org}在产品研发中遇到芯片散热技术难题，寻求专家攻关", "企业需要检测认证服务，缩短新产品上市周期",
                  "制造企业希望推进数字化改造，需要工业软件方案"],
               ["高校实验室开放科研设备，可开展产学研技术攻关", "检测研究院提供产品检测认证和技术咨询",
                "软件公司提供工业互联网和数字化改造方案"]),
    "托育": ("c", ["社区双职工家庭多，需要暑期托管和四点半课堂", "居民希望在小区附近有普惠托育机构照看三岁以下幼儿",
                  "园区职工子女放学后无人照看，需要职工儿童之家"],
               ["企业出资建设职工儿童之家，向周边社区开放托育服务", "托育中心提供普惠托育名额和延时看护服务",
                "学校和志愿者协会开设四点半课堂和暑期托管班"]),
    "餐饮": ("e", ["园区员工午餐就餐难，需要团餐配送服务", "{org}加班员工多，希望附近有晚间食堂",
                  "企业举办活动需要{n}0人份的餐饮服务"],
               ["社区食堂向园区企业员工开放，提供平价午餐", "团餐公司提供企业员工食堂托管和配餐服务",
                "商业综合体餐饮商户联合推出企业员工餐优惠"]),
    "治安": ("e", ["园区夜间治安差，需要加强巡逻", "{org}门口经常有人乱摆摊，影响安全通行",
                  "企业仓库需要安保和监控设备维护"],
               ["社区组织平安志愿者开展夜间治安巡逻", "派出所和网格员联合开展园区治安整治",
                "保安公司提供企业安保和监控巡检服务"]),
    "停车": ("e", ["{org}员工停车难，上下班高峰车位严重不足", "企业访客多，需要临时停车位",
                  "园区周边道路违停严重，需要规划共享停车"],
               ["社区错时开放小区停车位，白天供企业员工停车", "停车管理公司提供共享停车和月租车位",
                "学校周末开放停车场，供周边企业和居民使用"]),
    "医护": ("*", ["{org}希望为员工组织年度健康体检", "社区老人多，需要上门医护和慢病随访",
                  "园区需要急救培训和AED设备配置"],
               ["社区卫生服务站提供家庭医生签约和上门医护", "医院派医生到园区开展义诊和健康体检",
                "红十字会志愿者提供急救培训，企业可预约"]),
    "交友": ("e", ["园区青年员工社交圈窄，希望组织联谊活动", "{org}单身员工较多，需要青年交友平台",
                  "新来成都的员工希望参加兴趣社团结识朋友"],
               ["团委和工会联合举办青年交友联谊活动", "社区青年之家每月组织读书会和户外活动",
                "商务楼宇党群服务站举办跨企业兴趣社团"]),
    "心理辅导": ("*", ["{org}员工工作压力大，需要心理辅导讲座", "社区独居老人需要心理疏导和陪伴",
                    "青少年学业压力大，家长希望有心理咨询服务"],
                 ["心理咨询中心为企业员工提供心理健康讲座和一对一咨询", "社工机构开展独居老人心理疏导和陪伴服务",
                  "高校心理学专业志愿者提供青少年心理辅导"]),
    "公益": ("c", ["社区需要志愿者参与垃圾分类宣传", "老旧小区适老化改造缺少资金和志愿者",
                  "社区图书室需要图书捐赠和阅读活动"],
               ["企业员工志愿者服务队可参与社区公益服务", "科技企业捐赠图书和电脑，支持社区阅读空间",
                "企业社会责任项目资助老旧小区适老化改造"]),
}
DETAILS = ["联系人：{who}，电话138{phone}", "希望在{month}月底前落实", "可长期合作", "优先考虑附近单位",
           "有意者请联系网格员", "费用可协商", "已在亲清在线平台登记"]
WHO = ["王老师", "李经理", "张主任", "刘书记", "陈女士", "杨先生", "赵网格员", "黄站长"]


def make_grids(rng: random.Random) -> list[dict]:
    grids, areas = [], iter(AREA_NAMES)
    points = iter(POINT_NAMES)
    for s_index, street in enumerate(STREETS):
        short = street.removesuffix("街道")
        blocks = []
        for b in range(2 if s_index < 3 else 1):
            gid = f"G{s_index + 1}B{b + 1}"
            blocks.append(gid)
            grids.append({"id": gid, "name": BLOCK_NAMES[b].format(s=short), "kind": "block", "parent": "",
                          "street": street})
        area_ids = []
        for a in range(2):
            gid = f"G{s_index + 1}A{a + 1}"
            area_ids.append(gid)
            grids.append({"id": gid, "name": next(areas), "kind": "area", "parent": blocks[a % len(blocks)],
                          "street": street})
        for p in range(6):
            gid = f"G{s_index + 1}P{p + 1}"
            parent = [area_ids[0], area_ids[1], blocks[0], ""][p % 4]
            grids.append({"id": gid, "name": next(points), "kind": "point", "parent": parent, "street": street})
    return grids


def _place(rng: random.Random, grid: dict) -> tuple[float, float]:
    lat, lon = STREETS[grid["street"]]
    return round(lat + rng.uniform(-0.012, 0.012), 6), round(lon + rng.uniform(-0.012, 0.012), 6)


_T2S = opencc.OpenCC("s2t")
_FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def _messy(rng: random.Random, text: str) -> str:
    """Some posts arrive the way staff really see them: traditional script, full-width digits, stray spaces."""
    roll = rng.random()
    if roll < 0.08:
        return _T2S.convert(text)
    if roll < 0.13:
        return text.translate(_FULL)
    if roll < 0.18:
        cut = rng.randrange(1, max(len(text) - 1, 2))
        return f"  {text[:cut]} {text[cut:]} "
    if roll < 0.21 and "关" in text:
        return text.replace("关", "關(guān)", 1)
    return text


def _records(rng: random.Random, grids: list[dict], count: int, kind: str, prefix: str) -> list[dict]:
    orgs = [g["name"] for g in grids if g["kind"] == "point"]
    categories = list(CATALOGUE)
    out = []
    for number in range(1, count + 1):
        category = categories[(number * 7 + rng.randrange(len(categories))) % len(categories)]
        need_side, need_templates, resource_templates = CATALOGUE[category]
        template = rng.choice(need_templates if kind == "need" else resource_templates)
        title = template.format(org=rng.choice(orgs), n=rng.randint(2, 9))
        grid = rng.choice(grids)
        if need_side == "*":
            side = rng.choice(["enterprise", "community"])
        else:
            on_need = "enterprise" if need_side == "e" else "community"
            side = on_need if kind == "need" else ("community" if on_need == "enterprise" else "enterprise")
            if rng.random() < 0.15:
                side = on_need  # some offers come from the same side: a firm helping firms
        detail = rng.choice(DETAILS).format(who=rng.choice(WHO), phone=f"{rng.randrange(10**8):08d}",
                                            month=rng.randint(1, 12))
        lat, lon = _place(rng, grid)
        record = {"id": f"{prefix}{number:04d}", "title": _messy(rng, title), "description": detail,
                  "category": category if rng.random() > 0.1 else "", "grid": grid["id"], "side": side,
                  "lat": lat, "lon": lon}
        if rng.random() < 0.05:
            record.pop("lat"), record.pop("lon")
        if kind == "need":
            record["deadline"] = f"2027-{rng.randint(1, 3):02d}-{rng.randint(1, 28):02d}" if rng.random() > 0.1 \
                else f"2026-{rng.randint(10, 11):02d}-{rng.randint(1, 25):02d}"
        else:
            record["capacity"] = rng.choice([1, 1, 1, 2, 2, 3, 5])
        out.append(record)
    return out


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def main() -> None:
    rng = random.Random(SEED)
    grids = make_grids(rng)
    _write(OUT / "grids.jsonl", grids)
    _write(OUT / "needs.jsonl", _records(rng, grids, 320, "need", "N"))
    _write(OUT / "resources.jsonl", _records(rng, grids, 420, "resource", "R"))


if __name__ == "__main__":
    main()
