"""Fixed vocabulary of the synthetic city 江城市: regions, departments, industries, names and
penalty templates. Pure data; nothing here is random."""

from __future__ import annotations

from safecredit.codes import make_org_code, make_uscc

# --------------------------------------------------------------------------- the city
# A fictional prefecture: 3312 is not assigned in GB/T 2260 (Zhejiang's prefectures end at 3311).
CITY = "江城市"
CITY_SHORT = "江城"
CITY_CODE = "331200"
#: (code, name, share of registered enterprises)
DISTRICTS = [
    ("331202", "东湖区", 0.18),
    ("331203", "西江区", 0.16),
    ("331204", "南港区", 0.14),
    ("331205", "北山区", 0.12),
    ("331206", "江北区", 0.12),
    ("331221", "青溪县", 0.10),
    ("331222", "白石县", 0.08),
    ("331281", "临江市", 0.10),
]
DISTRICT_CODES = [d[0] for d in DISTRICTS]
DISTRICT_NAMES = [d[1] for d in DISTRICTS]
DISTRICT_WEIGHTS = [d[2] for d in DISTRICTS]

#: Region codes of ID numbers: 9 local (incl. the old 市辖区 code) + 11 elsewhere in China.
PERSON_REGIONS = DISTRICT_CODES + [
    "331201",
    "330102",
    "330302",
    "340102",
    "360102",
    "410102",
    "420102",
    "430102",
    "500101",
    "510104",
    "522401",
    "362201",
]
PERSON_BIRTH_FIRST = "1955-01-01"
PERSON_BIRTH_LAST = "2000-12-31"

ROADS = [
    "104国道",
    "329国道",
    "沪昆高速",
    "甬金高速",
    "S205省道",
    "江滨大道",
    "环城北路",
    "人民大道",
    "解放路",
    "临江大道",
    "青溪公路",
    "白石线",
    "北山隧道",
    "南港大桥",
]

# --------------------------------------------------------------------------- departments


def _gov_uscc(first8: str) -> str:
    # authority 1 (机构编制), entity type 1 (机关), city-level region code
    return make_uscc("1", "1", CITY_CODE, make_org_code(first8))


DEFAULT_DEPARTMENTS: list[dict] = [
    {
        "id": "yjj",
        "name": "市应急管理局",
        "full_name": "江城市应急管理局",
        "uscc": _gov_uscc("00250011"),
        "wsh_prefix": "江应急罚",
        "datasets": [
            "enterprises",
            "penalties",
            "accidents",
            "intermediary_ratings",
            "credit_actions",
            "listing_decisions",
        ],
        "transports": ["json", "csv"],
        "kind": "emergency",  # its list regime (operations.md): 应急管理部令第11号
    },
    {
        "id": "zjj",
        "name": "市住房和城乡建设局",
        "full_name": "江城市住房和城乡建设局",
        "uscc": _gov_uscc("00250028"),
        "wsh_prefix": "江建罚",
        "datasets": ["penalties", "credit_actions"],
        "transports": ["csv"],
        "kind": "housing",
    },
    {
        "id": "jtj",
        "name": "市交通运输局",
        "full_name": "江城市交通运输局",
        "uscc": _gov_uscc("00250036"),
        "wsh_prefix": "江交罚",
        "datasets": ["penalties", "accidents"],
        "transports": ["json"],
        "kind": "transport",
    },
    {
        "id": "scj",
        "name": "市市场监督管理局",
        "full_name": "江城市市场监督管理局",
        "uscc": _gov_uscc("00250044"),
        "wsh_prefix": "江市监罚",
        "datasets": ["penalties"],
        "transports": ["json", "csv"],
        "kind": "market",
    },
]
DEPT_IDS = [d["id"] for d in DEFAULT_DEPARTMENTS]
YJJ, ZJJ, JTJ, SCJ = range(4)

# --------------------------------------------------------------------------- industries
# group → (risk weight for inspections/penalties, weight for industry-and-trade accidents,
#          department that penalises it, accident-type distribution key)
GROUPS = {
    "construction": (3.0, 5.0, ZJJ, "construction"),
    "transport": (2.5, 0.0, JTJ, "road"),
    "hazchem": (3.5, 1.5, YJJ, "hazchem"),
    "metal": (4.0, 2.5, YJJ, "metal"),
    "mining": (5.0, 8.0, YJJ, "mining"),
    "fireworks": (5.0, 4.0, YJJ, "explosive"),
    "explosives": (6.0, 4.0, YJJ, "explosive"),
    "fishery": (3.0, 2.0, YJJ, "fishery"),
    "manufacturing": (1.5, 1.0, YJJ, "factory"),
    "warehouse": (1.5, 1.0, YJJ, "factory"),
    "utility": (1.5, 1.0, YJJ, "factory"),
    "trade": (0.6, 0.2, YJJ, "premises"),
    "hospitality": (0.8, 0.2, YJJ, "premises"),
    "realestate": (0.5, 0.3, YJJ, "premises"),
    "service": (0.4, 0.2, YJJ, "premises"),
    "agency": (0.0, 0.0, YJJ, "premises"),
}
GROUP_NAMES = list(GROUPS)

# (GB/T 4754-2017 code, name, 高危行业, group, share of the registry in %, name words)
INDUSTRIES: list[tuple[str, str, str, str, float, tuple[str, ...]]] = [
    ("E4710", "住宅房屋建筑", "建筑施工", "construction", 3.5, ("建设工程", "建筑工程", "建工")),
    ("E4790", "其他房屋建筑业", "建筑施工", "construction", 1.5, ("建筑", "建设")),
    ("E4813", "市政道路工程建筑", "建筑施工", "construction", 1.5, ("市政工程", "路桥工程")),
    ("E4990", "其他土木工程建筑", "建筑施工", "construction", 1.0, ("土木工程", "基础工程")),
    ("E5010", "电气安装", "建筑施工", "construction", 1.0, ("电力安装工程", "机电安装")),
    ("E5020", "管道和设备安装", "建筑施工", "construction", 0.8, ("设备安装工程", "管道工程")),
    ("E5090", "其他建筑安装业", "建筑施工", "construction", 0.7, ("建筑劳务", "安装工程")),
    ("G5431", "普通货物道路运输", "交通运输", "transport", 3.5, ("物流", "货运", "运输")),
    ("G5435", "危险货物道路运输", "交通运输", "transport", 0.8, ("危险品运输", "化工物流")),
    ("G5432", "冷藏车道路运输", "交通运输", "transport", 0.5, ("冷链物流",)),
    ("G5439", "其他道路货物运输", "交通运输", "transport", 1.0, ("运输", "货运")),
    ("G5421", "长途客运", "交通运输", "transport", 0.5, ("客运", "汽车运输")),
    ("G5422", "旅游客运", "交通运输", "transport", 0.4, ("旅游客运",)),
    ("G5411", "公共电汽车客运", "交通运输", "transport", 0.3, ("公交", "公共交通")),
    ("C2614", "有机化学原料制造", "危险化学品", "hazchem", 0.6, ("化工", "化学")),
    ("C2619", "其他基础化学原料制造", "危险化学品", "hazchem", 0.4, ("化工", "新材料")),
    ("C2641", "涂料制造", "危险化学品", "hazchem", 0.5, ("涂料", "化工")),
    ("C2661", "化学试剂和助剂制造", "危险化学品", "hazchem", 0.5, ("化学", "精细化工")),
    ("F5265", "机动车燃油零售", "危险化学品", "hazchem", 1.2, ("石油销售", "加油站")),
    ("F5162", "石油及制品批发", "危险化学品", "hazchem", 0.5, ("石化", "能源")),
    ("G5941", "危险化学品仓储", "危险化学品", "hazchem", 0.3, ("化工仓储",)),
    ("C3110", "炼铁", "金属冶炼", "metal", 0.2, ("钢铁", "冶金")),
    ("C3120", "炼钢", "金属冶炼", "metal", 0.3, ("钢铁", "特钢")),
    ("C3211", "铜冶炼", "金属冶炼", "metal", 0.3, ("铜业", "有色金属")),
    ("C3216", "铝冶炼", "金属冶炼", "metal", 0.4, ("铝业",)),
    ("C3391", "黑色金属铸造", "金属冶炼", "metal", 0.3, ("铸造", "铸业")),
    ("B1011", "石灰石、石膏开采", "矿山", "mining", 0.5, ("矿业", "石灰石")),
    ("B1019", "粘土及其他土砂石开采", "矿山", "mining", 0.7, ("石料", "采石", "砂石")),
    ("B0610", "烟煤和无烟煤开采洗选", "矿山", "mining", 0.1, ("煤业", "矿业")),
    ("B0810", "铁矿采选", "矿山", "mining", 0.2, ("矿业",)),
    ("C2672", "焰火、鞭炮产品制造", "烟花爆竹", "fireworks", 0.1, ("烟花", "烟花爆竹")),
    ("F5149", "其他日用品批发", "烟花爆竹", "fireworks", 0.2, ("烟花爆竹经营",)),
    ("C2671", "炸药及火工产品制造", "民用爆炸物品", "explosives", 0.2, ("民爆器材", "化工")),
    ("A0421", "海水捕捞", "渔业生产", "fishery", 0.2, ("渔业", "海洋渔业")),
    ("A0422", "内陆捕捞", "渔业生产", "fishery", 0.15, ("渔业",)),
    ("A0411", "海水养殖", "渔业生产", "fishery", 0.15, ("水产", "水产养殖")),
    ("C1810", "机织服装制造", "无", "manufacturing", 3.0, ("服饰", "服装", "制衣")),
    ("C1713", "棉印染精加工", "无", "manufacturing", 1.5, ("印染", "纺织")),
    ("C2110", "木质家具制造", "无", "manufacturing", 2.0, ("家具", "木业")),
    ("C2231", "纸和纸板容器制造", "无", "manufacturing", 1.5, ("包装", "纸业")),
    ("C2929", "塑料零件及其他塑料制品制造", "无", "manufacturing", 3.0, ("塑业", "塑料制品")),
    ("C3311", "金属结构制造", "无", "manufacturing", 3.0, ("钢结构", "金属制品")),
    ("C3360", "金属表面处理及热处理加工", "无", "manufacturing", 1.5, ("表面处理", "电镀")),
    ("C3484", "机械零部件加工", "无", "manufacturing", 3.0, ("机械", "精密机械")),
    ("C3670", "汽车零部件及配件制造", "无", "manufacturing", 3.0, ("汽车零部件", "汽配")),
    ("C3899", "其他未列明电气机械及器材制造", "无", "manufacturing", 1.5, ("电器", "电气")),
    ("C1311", "稻谷加工", "无", "manufacturing", 1.0, ("米业", "粮油")),
    ("C1351", "牲畜屠宰", "无", "manufacturing", 0.5, ("食品", "肉类加工")),
    ("C3981", "电阻电容电感元件制造", "无", "manufacturing", 2.0, ("电子", "电子科技")),
    ("C3021", "水泥制品制造", "无", "manufacturing", 1.5, ("建材", "水泥制品")),
    ("C3031", "粘土砖瓦及建筑砌块制造", "无", "manufacturing", 1.0, ("新型建材", "砖瓦")),
    ("C1921", "皮鞋制造", "无", "manufacturing", 1.0, ("鞋业",)),
    ("F5211", "百货零售", "无", "trade", 4.0, ("商贸", "百货")),
    ("F5212", "超级市场零售", "无", "trade", 3.0, ("超市", "商业")),
    ("F5174", "五金产品批发", "无", "trade", 3.0, ("五金", "贸易")),
    ("F5191", "互联网批发", "无", "trade", 2.0, ("电子商务", "贸易")),
    ("F5261", "汽车新车零售", "无", "trade", 2.0, ("汽车销售服务",)),
    ("F5121", "米、面制品及食用油批发", "无", "trade", 2.0, ("粮油贸易",)),
    ("F5271", "家用视听设备零售", "无", "trade", 2.0, ("电器销售",)),
    ("F5223", "果品、蔬菜零售", "无", "trade", 2.0, ("农产品", "果蔬")),
    ("H6110", "旅游饭店", "无", "hospitality", 1.5, ("酒店", "大酒店")),
    ("H6121", "经济型连锁酒店", "无", "hospitality", 1.5, ("酒店管理", "宾馆")),
    ("H6210", "正餐服务", "无", "hospitality", 4.0, ("餐饮", "餐饮管理")),
    ("H6220", "快餐服务", "无", "hospitality", 1.0, ("餐饮",)),
    ("G5920", "通用仓储", "无", "warehouse", 1.5, ("仓储", "仓储物流")),
    ("G5910", "装卸搬运", "无", "warehouse", 1.0, ("装卸", "搬运")),
    ("G5990", "其他仓储业", "无", "warehouse", 0.5, ("仓储",)),
    ("D4411", "火力发电", "无", "utility", 0.3, ("热电", "发电")),
    ("D4430", "热力生产和供应", "无", "utility", 0.5, ("热力", "能源")),
    ("D4511", "天然气生产和供应业", "无", "utility", 0.5, ("燃气", "天然气")),
    ("D4610", "自来水生产和供应", "无", "utility", 0.7, ("供水", "水务")),
    ("K7010", "房地产开发经营", "无", "realestate", 2.0, ("房地产开发", "置业")),
    ("K7020", "物业管理", "无", "realestate", 1.0, ("物业管理", "物业服务")),
    ("I6513", "应用软件开发", "无", "service", 2.0, ("科技", "信息技术", "软件")),
    ("I6450", "互联网数据服务", "无", "service", 0.5, ("网络科技", "数据科技")),
    ("N7820", "环境卫生管理", "无", "service", 1.0, ("环境卫生", "环境工程")),
    ("N7721", "水污染治理", "无", "service", 1.0, ("环保科技", "水处理")),
    ("O8010", "家庭服务", "无", "service", 1.0, ("家政服务",)),
    ("O8111", "汽车修理与维护", "无", "service", 2.0, ("汽车维修", "汽车服务")),
    ("O8051", "洗染服务", "无", "service", 0.5, ("洗涤服务",)),
    ("M7482", "工程监理服务", "无", "service", 1.0, ("工程监理", "建设监理")),
    # agencies (not drawn by share: a fixed 0.3% of the registry, see subjects.py)
    ("M7249", "其他专业咨询与调查", "无", "agency", 0.0, ("安全技术咨询", "安全评价", "安全科技")),
    ("M7452", "检测服务", "无", "agency", 0.0, ("检测技术", "安全检测", "检验检测")),
    ("M7520", "认证认可服务", "无", "agency", 0.0, ("认证服务", "质量安全认证")),
]
IND_CODES = [i[0] for i in INDUSTRIES]
IND_GWHY = [i[2] for i in INDUSTRIES]
IND_GROUP = [GROUP_NAMES.index(i[3]) for i in INDUSTRIES]
IND_SHARE = [i[4] for i in INDUSTRIES]
AGENCY_INDUSTRY = {
    name: IND_CODES.index(code)
    for name, code in [
        ("安全评价", "M7249"),
        ("检测检验", "M7452"),
        ("职业卫生技术服务", "M7452"),
        ("安全认证", "M7520"),
    ]
}
AGENCY_TYPES = ["安全评价", "检测检验", "职业卫生技术服务", "安全认证"]
AGENCY_TYPE_WEIGHTS = [0.40, 0.35, 0.20, 0.05]
AGENCY_WORDS = {
    "安全评价": ("安全技术咨询", "安全评价", "安全科技"),
    "检测检验": ("检测技术", "安全检测", "检验检测"),
    "职业卫生技术服务": ("职业卫生技术服务", "职业卫生检测"),
    "安全认证": ("认证服务", "质量安全认证"),
}
AGENCY_CERT_PREFIX = {"安全评价": "APJ", "检测检验": "AJC", "职业卫生技术服务": "ZWJ", "安全认证": "ARZ"}
HIGH_RISK = ["矿山", "危险化学品", "烟花爆竹", "交通运输", "建筑施工", "民用爆炸物品", "金属冶炼", "渔业生产"]

#: Names of 个体工商户 (entity type 92) end in a shop word chosen by group.
SHOP_WORDS = {
    "trade": ("商行", "经营部", "便利店", "五金店"),
    "hospitality": ("饭店", "小吃店", "旅馆"),
    "service": ("汽车修理部", "洗衣店", "家政服务部"),
    "manufacturing": ("加工厂", "加工坊"),
    "transport": ("货运部", "运输户"),
}
#: Share of 个体工商户 (92) and 农民专业合作社 (93) registrations within a group.
INDIVIDUAL_SHARE = {"trade": 0.15, "hospitality": 0.20, "service": 0.10, "manufacturing": 0.03, "transport": 0.05}
COOP_SHARE = {"fishery": 0.40}

COMPANY_SUFFIXES = ["有限公司", "有限责任公司", "股份有限公司"]
COMPANY_SUFFIX_WEIGHTS = [0.55, 0.35, 0.10]

ZIHAO_CHARS = (
    "恒达鑫盛华宏泰兴隆昌丰源瑞祥安康顺福裕通永利鼎金银海天宇星辰光明远博创新力联合信诚德仁和"
    "嘉佳美富荣豪威雄腾飞龙凤锦绣宝万众汇聚融润泽江湖山川峰岭松柏竹梅兰青蓝绿东南西北中正方圆"
    "立建成展越卓尚品优精工匠科技智慧云峻浩晟昊晨曦阳春秋时诺亚欧晶铭铸锋钢石玉翠林森禾田茂发"
    "旺亨兆基业邦凯旭振环球奥达亿聚百千坤乾元恺骏驰锐铠拓扬益嘉禧誉"
)

# --------------------------------------------------------------------------- person names
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程"
    "魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾"
    "龚邵万钱戴严莫孔向常汤康易乔赖文"
)
# rough frequency: the first ten surnames carry ~40% of the population
SURNAME_WEIGHTS = (
    [7.2, 7.0, 6.8, 5.4, 4.6, 3.1, 2.2, 2.1, 2.0, 1.7] + [0.9] * 20 + [0.45] * 40 + [0.22] * (len(SURNAMES) - 70)
)
GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆亮建国志文斌海东林峰兵龙晨毅杰良"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞秀英华玲萍红燕梅琳颖雪慧洁倩婷琴云莉丹蓉欣悦佳雅楠"

# --------------------------------------------------------------------------- accidents
ACCIDENT_TYPES = [
    "物体打击",
    "车辆伤害",
    "机械伤害",
    "起重伤害",
    "触电",
    "淹溺",
    "灼烫",
    "火灾",
    "高处坠落",
    "坍塌",
    "冒顶片帮",
    "透水",
    "放炮",
    "火药爆炸",
    "瓦斯爆炸",
    "锅炉爆炸",
    "容器爆炸",
    "其他爆炸",
    "中毒和窒息",
    "其他伤害",
]
#: GB 6441 type mix by setting (keys from GROUPS' fourth element, plus "other" for fires etc.)
ACCIDENT_TYPE_MIX = {
    "construction": {
        "高处坠落": 0.45,
        "物体打击": 0.15,
        "坍塌": 0.15,
        "起重伤害": 0.10,
        "触电": 0.07,
        "机械伤害": 0.05,
        "车辆伤害": 0.03,
    },
    "mining": {
        "冒顶片帮": 0.25,
        "物体打击": 0.15,
        "车辆伤害": 0.15,
        "放炮": 0.10,
        "透水": 0.05,
        "瓦斯爆炸": 0.05,
        "高处坠落": 0.10,
        "坍塌": 0.10,
        "机械伤害": 0.05,
    },
    "hazchem": {
        "中毒和窒息": 0.30,
        "其他爆炸": 0.15,
        "容器爆炸": 0.10,
        "火灾": 0.15,
        "灼烫": 0.15,
        "高处坠落": 0.10,
        "车辆伤害": 0.05,
    },
    "metal": {"灼烫": 0.35, "其他爆炸": 0.10, "起重伤害": 0.20, "机械伤害": 0.15, "物体打击": 0.10, "中毒和窒息": 0.10},
    "explosive": {"火药爆炸": 0.85, "火灾": 0.15},
    "fishery": {"淹溺": 0.80, "机械伤害": 0.10, "其他伤害": 0.10},
    "factory": {
        "机械伤害": 0.35,
        "物体打击": 0.15,
        "起重伤害": 0.12,
        "触电": 0.08,
        "高处坠落": 0.10,
        "车辆伤害": 0.08,
        "灼烫": 0.04,
        "中毒和窒息": 0.04,
        "锅炉爆炸": 0.01,
        "容器爆炸": 0.01,
        "其他伤害": 0.02,
    },
    "premises": {
        "高处坠落": 0.25,
        "触电": 0.20,
        "中毒和窒息": 0.15,
        "物体打击": 0.10,
        "淹溺": 0.05,
        "车辆伤害": 0.10,
        "其他伤害": 0.15,
    },
    "road": {"车辆伤害": 1.0},
    "other": {"火灾": 0.70, "淹溺": 0.08, "触电": 0.05, "其他爆炸": 0.04, "中毒和窒息": 0.03, "其他伤害": 0.10},
}
GRADES = ["一般", "较大", "重大", "特别重大"]
LIABILITY = ["责任事故", "非责任事故", "调查中"]
REPORTING = ["正常", "迟报", "漏报", "谎报", "瞒报"]

# --------------------------------------------------------------------------- penalties
WFDM = [
    "OTHER",
    "HIDDEN_DANGER_UNFIXED",
    "NO_LIABILITY_INSURANCE",
    "UNLICENSED_OPERATION",
    "REFUSED_EXECUTION",
    "AGENCY_FRAUD",
    "ACCIDENT_LIABILITY",
    "ACCIDENT_CONCEALED",
    "PRINCIPAL_ABSCONDED",
    "",
]  # "" = not classified (written as null)
(OTHER, HIDDEN, NO_INS, UNLICENSED, REFUSED, AGENCY_FRAUD, ACC_LIAB, CONCEALED, ABSCONDED, UNCLASSIFIED) = range(
    len(WFDM)
)
#: the codes that can carry a listing ground by themselves (ACCIDENT_LIABILITY and OTHER
#: depend on the grade / 情节, see events.listable)
GROUND_CODES = (UNLICENSED, REFUSED, AGENCY_FRAUD, CONCEALED, ABSCONDED)
QJ = ["一般", "严重", "特别严重"]
ZXZT = ["未执行", "已执行", "拒不执行"]

AQF = "《中华人民共和国安全生产法》"
#: 处罚类别 combinations (`;`-joined as written in CF_CFLB)
CFLB = [
    "罚款",
    "警告;罚款",
    "警告",
    "罚款;责令停产停业",
    "罚款;暂扣许可证件",
    "没收违法所得;罚款",
    "没收违法所得;罚款;责令停产停业",
    "罚款;吊销许可证件",
    "没收违法所得;罚款;吊销许可证件",
    "罚款;限制从业",
    "罚款;降低资质等级",
]
CFLB_INDEX = {c: i for i, c in enumerate(CFLB)}
#: ordinary penalties: share of each 处罚类别 combination
ORDINARY_CFLB = {
    "罚款": 0.70,
    "警告;罚款": 0.15,
    "警告": 0.08,
    "罚款;责令停产停业": 0.04,
    "罚款;暂扣许可证件": 0.01,
    "没收违法所得;罚款": 0.02,
}

# A template: (code, departments, 违法行为类型, 事实, 违反的规定, 处罚依据,
#              fine 万元 (lo, median, hi), 处罚类别 override or None,
#              fact kind: "" plain / "acc" names an accident / "ref" an earlier decision)
T = tuple[int, tuple[int, ...], str, str, str, str, tuple[float, float, float], dict | None, str]
TEMPLATES: list[T] = [
    (
        OTHER,
        (YJJ, ZJJ),
        "未按照规定对从业人员进行安全生产教育和培训",
        "未按照规定对从业人员进行安全生产教育和培训，部分从业人员未经培训合格即上岗作业",
        AQF + "第二十八条第一款",
        AQF + "第九十七条第三项",
        (0.5, 1.5, 10),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ, ZJJ),
        "特种作业人员未持证上岗",
        "特种作业人员未按照规定经专门的安全作业培训并取得相应资格即上岗作业",
        AQF + "第三十条第一款",
        AQF + "第九十七条第七项",
        (1, 2, 10),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ,),
        "未按照规定配备安全生产管理人员",
        "未按照规定设置安全生产管理机构或者配备安全生产管理人员",
        AQF + "第二十四条第一款",
        AQF + "第九十七条第一项",
        (1, 2, 10),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ,),
        "安全设备未经常性维护、保养",
        "未对安全设备进行经常性维护、保养和定期检测",
        AQF + "第三十六条第一款",
        AQF + "第九十九条第三项",
        (0.5, 1.5, 5),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ,),
        "未建立事故隐患排查治理制度",
        "未建立事故隐患排查治理制度，未如实记录事故隐患排查治理情况",
        AQF + "第四十一条第二款",
        AQF + "第一百零一条第五项",
        (1, 2, 10),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ,),
        "疏散通道不符合要求",
        "生产经营场所和员工宿舍未设有符合紧急疏散需要、标志明显、保持畅通的出口和疏散通道",
        AQF + "第四十二条第二款",
        AQF + "第一百零五条第二项",
        (0.5, 1, 5),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ,),
        "未设置安全警示标志",
        "未在有较大危险因素的生产经营场所和有关设施、设备上设置明显的安全警示标志",
        AQF + "第三十五条",
        AQF + "第九十九条第一项",
        (0.3, 1, 5),
        None,
        "",
    ),
    (
        OTHER,
        (YJJ,),
        "重大危险源未登记建档",
        "对重大危险源未登记建档，未进行定期检测、评估、监控",
        AQF + "第四十条第一款",
        AQF + "第一百零一条第二项",
        (2, 4, 10),
        None,
        "",
    ),
    (
        OTHER,
        (ZJJ,),
        "未编制危险性较大的分部分项工程专项施工方案",
        "对达到一定规模的危险性较大的分部分项工程未编制专项施工方案",
        "《建设工程安全生产管理条例》第二十六条",
        "《建设工程安全生产管理条例》第六十五条第四项",
        (10, 12, 30),
        None,
        "",
    ),
    (
        OTHER,
        (ZJJ,),
        "施工起重机械未经验收即投入使用",
        "使用承租的机械设备和施工机具及配件未经组织验收即投入使用",
        "《建设工程安全生产管理条例》第三十五条",
        "《建设工程安全生产管理条例》第六十五条第三项",
        (10, 12, 30),
        None,
        "",
    ),
    (
        OTHER,
        (ZJJ,),
        "施工现场临时建筑不符合安全要求",
        "施工现场临时搭建的建筑物不符合安全使用要求",
        "《建设工程安全生产管理条例》第二十九条",
        "《建设工程安全生产管理条例》第六十四条",
        (5, 5, 10),
        None,
        "",
    ),
    (
        OTHER,
        (JTJ,),
        "未按规定使用车辆动态监控",
        "未按照规定使用卫星定位装置对所属营运车辆进行动态监控",
        "《道路运输车辆动态监督管理办法》第二十四条",
        "《道路运输车辆动态监督管理办法》第三十六条",
        (0.3, 0.5, 0.8),
        None,
        "",
    ),
    (
        OTHER,
        (JTJ,),
        "驾驶人员未取得从业资格",
        "聘用未取得相应从业资格证件的驾驶人员驾驶营运车辆",
        "《中华人民共和国道路运输条例》第九条",
        "《中华人民共和国道路运输条例》第六十四条",
        (0.2, 0.5, 2),
        None,
        "",
    ),
    (
        OTHER,
        (JTJ,),
        "客运车辆超员",
        "客运车辆载客超过核定人数",
        "《中华人民共和国道路运输条例》第十八条",
        "《中华人民共和国道路运输条例》第六十九条",
        (0.2, 0.5, 1),
        None,
        "",
    ),
    (
        OTHER,
        (SCJ,),
        "使用未经定期检验的特种设备",
        "使用未经定期检验或者检验不合格的特种设备",
        "《中华人民共和国特种设备安全法》第四十条",
        "《中华人民共和国特种设备安全法》第八十四条第一项",
        (3, 3, 30),
        None,
        "",
    ),
    (
        OTHER,
        (SCJ,),
        "特种设备未办理使用登记",
        "特种设备使用单位未按照规定办理使用登记",
        "《中华人民共和国特种设备安全法》第三十三条",
        "《中华人民共和国特种设备安全法》第八十三条第一项",
        (1, 1, 10),
        None,
        "",
    ),
    (
        OTHER,
        (SCJ,),
        "未配备特种设备安全管理人员",
        "未配备具有相应资格的特种设备安全管理人员、检测人员和作业人员",
        "《中华人民共和国特种设备安全法》第十四条",
        "《中华人民共和国特种设备安全法》第八十六条第一项",
        (1, 1, 5),
        None,
        "",
    ),
    (
        OTHER,
        (SCJ,),
        "电梯未按规定维护保养",
        "未按照安全技术规范的要求对电梯进行维护保养",
        "《中华人民共和国特种设备安全法》第四十五条",
        "《中华人民共和国特种设备安全法》第八十八条",
        (1, 2, 10),
        None,
        "",
    ),
    (
        HIDDEN,
        (YJJ, ZJJ, JTJ, SCJ),
        "事故隐患未消除",
        "对检查发现的重大事故隐患未采取措施消除，逾期未整改",
        AQF + "第四十一条第二款",
        AQF + "第一百零二条",
        (0.5, 2, 5),
        None,
        "",
    ),
    (
        NO_INS,
        (YJJ, ZJJ, JTJ),
        "未投保安全生产责任保险",
        "属于高危行业、领域的生产经营单位，未按照国家规定投保安全生产责任保险",
        AQF + "第五十一条第二款",
        AQF + "第一百零九条",
        (5, 5, 10),
        None,
        "",
    ),
    (
        UNLICENSED,
        (YJJ,),
        "未取得安全生产许可证擅自生产",
        "未取得安全生产许可证擅自进行生产",
        "《安全生产许可证条例》第二条",
        "《安全生产许可证条例》第十九条",
        (10, 15, 50),
        {"没收违法所得;罚款": 0.5, "没收违法所得;罚款;责令停产停业": 0.5},
        "",
    ),
    (
        UNLICENSED,
        (YJJ,),
        "安全生产许可证期满未延期继续生产",
        "安全生产许可证有效期满未办理延期手续，继续进行生产",
        "《安全生产许可证条例》第九条",
        "《安全生产许可证条例》第二十条",
        (5, 5, 10),
        {"没收违法所得;罚款": 0.6, "没收违法所得;罚款;责令停产停业": 0.4},
        "",
    ),
    (
        UNLICENSED,
        (YJJ,),
        "未取得危险化学品经营许可证从事经营",
        "未取得危险化学品经营许可证从事危险化学品经营",
        "《危险化学品安全管理条例》第三十三条",
        "《危险化学品安全管理条例》第七十七条第三款",
        (10, 12, 20),
        {"没收违法所得;罚款": 1.0},
        "",
    ),
    (
        UNLICENSED,
        (ZJJ,),
        "未取得安全生产许可证从事建筑施工",
        "建筑施工企业未取得安全生产许可证擅自从事建筑施工活动",
        "《建筑施工企业安全生产许可证管理规定》第二条",
        "《建筑施工企业安全生产许可证管理规定》第二十四条",
        (10, 15, 50),
        {"没收违法所得;罚款;责令停产停业": 1.0},
        "",
    ),
    (
        UNLICENSED,
        (JTJ,),
        "未取得道路运输经营许可擅自经营",
        "未取得道路运输经营许可，擅自从事道路运输经营",
        "《中华人民共和国道路运输条例》第二十四条",
        "《中华人民共和国道路运输条例》第六十三条",
        (1, 3, 10),
        {"没收违法所得;罚款": 1.0},
        "",
    ),
    (
        UNLICENSED,
        (SCJ,),
        "未经许可从事特种设备生产",
        "未经许可从事特种设备安装、改造、修理活动",
        "《中华人民共和国特种设备安全法》第十八条",
        "《中华人民共和国特种设备安全法》第七十四条",
        (10, 12, 50),
        {"没收违法所得;罚款": 1.0},
        "",
    ),
    (
        REFUSED,
        (YJJ, ZJJ, JTJ, SCJ),
        "拒不执行行政处罚决定",
        "拒不执行本机关{}行政处罚决定，经责令改正后逾期仍未改正",
        AQF + "第一百一十二条",
        AQF + "第一百一十二条、《中华人民共和国行政处罚法》第七十二条",
        (2, 5, 50),
        {"罚款;责令停产停业": 1.0},
        "ref",
    ),
]
# Templates built per accident grade (unit / person), concealment, absconding, agency fraud.
# A fact with "{}" takes the accident's description ("acc") or the earlier decision no. ("ref").
_ITEM = ["一", "二", "三", "四"]
T_REFUSED = next(i for i, t in enumerate(TEMPLATES) if t[0] == REFUSED)
T_LIAB_UNIT = len(TEMPLATES)  # + grade (0 一般 … 3 特别重大)
TEMPLATES += [
    (
        ACC_LIAB,
        (YJJ, ZJJ, JTJ, SCJ),
        "对生产安全事故发生负有责任",
        "对{}负有责任",
        AQF + "第四条",
        f"{AQF}第一百一十四条第一款第{_ITEM[g]}项",
        (0, 0, 0),
        None,
        "acc",
    )
    for g in range(4)
]
T_LIAB_UNIT_SEVERE = len(TEMPLATES)  # + grade: Art. 114 ¶2, 2–5× fine
TEMPLATES += [
    (
        ACC_LIAB,
        (YJJ, ZJJ, JTJ, SCJ),
        "对生产安全事故发生负有责任（情节特别严重）",
        "对{}负有责任，情节特别严重、影响特别恶劣",
        AQF + "第四条",
        f"{AQF}第一百一十四条第一款第{_ITEM[g]}项、第二款",
        (0, 0, 0),
        None,
        "acc",
    )
    for g in range(4)
]
T_LIAB_PERSON = len(TEMPLATES)  # + grade: Art. 95, 40/60/80/100 % of last year's income
TEMPLATES += [
    (
        ACC_LIAB,
        (YJJ, ZJJ, JTJ, SCJ),
        "主要负责人未履行安全生产管理职责导致事故",
        "作为主要负责人未履行安全生产管理职责，导致{}",
        AQF + "第二十一条",
        f"{AQF}第九十五条第{_ITEM[g]}项",
        (0, 0, 0),
        None,
        "acc",
    )
    for g in range(4)
]
T_CONCEALED_UNIT = len(TEMPLATES)
T_CONCEALED_PERSON = T_CONCEALED_UNIT + 1
T_ABSCONDED = T_CONCEALED_UNIT + 2
T_FRAUD_UNIT = T_CONCEALED_UNIT + 3
T_FRAUD_PERSON = T_CONCEALED_UNIT + 4
T_PRINCIPAL_DUTY = T_CONCEALED_UNIT + 5
TEMPLATES += [
    (
        CONCEALED,
        (YJJ, ZJJ, JTJ, SCJ),
        "瞒报、谎报生产安全事故",
        "瞒报、谎报{}",
        "《生产安全事故报告和调查处理条例》第四条",
        "《生产安全事故报告和调查处理条例》第三十六条",
        (100, 150, 500),
        None,
        "acc",
    ),
    (
        CONCEALED,
        (YJJ, ZJJ, JTJ, SCJ),
        "主要负责人瞒报、谎报生产安全事故",
        "作为主要负责人瞒报、谎报{}",
        AQF + "第八十三条",
        AQF + "第一百一十条第二款",
        (0, 0, 0),
        None,
        "acc",
    ),
    (
        ABSCONDED,
        (YJJ, ZJJ, JTJ, SCJ),
        "主要负责人事故发生后逃匿",
        "作为主要负责人，在{}后不立即组织抢救并擅离职守、逃匿",
        AQF + "第八十三条",
        AQF + "第一百一十条第一款",
        (0, 0, 0),
        None,
        "acc",
    ),
    (
        AGENCY_FRAUD,
        (YJJ,),
        "技术服务机构出具虚假报告",
        "在承担安全评价、检测检验技术服务过程中出具虚假报告",
        AQF + "第七十二条",
        AQF + "第九十二条第二款",
        (10, 15, 20),
        {"没收违法所得;罚款;吊销许可证件": 0.4, "没收违法所得;罚款": 0.6},
        "",
    ),
    (
        AGENCY_FRAUD,
        (YJJ,),
        "技术服务机构从业人员出具虚假报告",
        "在承担的技术服务项目中签署、出具虚假报告",
        AQF + "第七十二条",
        AQF + "第九十二条第二款",
        (5, 6, 10),
        {"罚款;限制从业": 1.0},
        "",
    ),
    (
        OTHER,
        (YJJ, ZJJ),
        "主要负责人未履行安全生产管理职责",
        "作为主要负责人未履行安全生产管理职责，未组织制定并实施本单位安全生产教育和培训计划",
        AQF + "第二十一条",
        AQF + "第九十四条第一款",
        (2, 2.5, 5),
        None,
        "",
    ),
]
#: ordinary-penalty templates by (code, department)
# HIDDEN_DANGER_UNFIXED forces credit grade D (聊城) and UNLICENSED_OPERATION lists the unit (B1): at
# 15% and 6% they drove D to 2–5% of units against 河北 2025's 0.53% (rules.md §6); 1% and 0.8% now. Calibrated with
# tests/test_rules_credit.py::test_grade_distribution_matches_hebei_2025.
ORDINARY_CODE_MIX = {OTHER: 0.55, HIDDEN: 0.01, NO_INS: 0.05, UNLICENSED: 0.008, UNCLASSIFIED: 0.05}
AGENCY_VIOLATIONS = ["出具失实报告", "超资质范围", "未到现场", "冒用签名", "其他"]
AGENCY_FRAUD_VIOLATIONS = ["租借资质", "挂靠", "出具虚假报告"]
XD_TYPES = ["信用修复", "撤销修复", "异议成立", "公示修复"]
XD_TEXT = [
    "当事人已履行行政处罚决定并完成整改，在严重失信主体名单公示满一年后申请信用修复，经审核予以移出",
    "经核查，当事人在信用修复申请中隐瞒真实情况、提供虚假材料，撤销信用修复决定，恢复列入严重失信主体名单",
    "当事人在陈述申辩期内提出异议，经复核异议成立，不予列入严重失信主体名单",
    "当事人已履行行政处罚决定，公示满最短公示期，申请提前停止公示，经审核同意",
]
