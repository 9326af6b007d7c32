//! Address text: folding to one comparable form, splitting a query into words, CJK runs and
//! numbers, and the approximate matching the gazetteer scores with.
//!
//! Folding lower-cases, removes Latin diacritics (`ä` → `a`, `ß` → `ss`), maps full-width
//! forms to ASCII (`１２号` → `12号`) and turns punctuation into spaces (a dash between digits
//! stays: `12-14` is a range of house numbers). Han characters are kept, apart from traditional
//! forms common in place names, which fold to their simplified form
//! (`車站` → `车站`). Chinese addresses have no spaces, so they are matched as runs of
//! characters rather than as words.

use std::ops::Range;

/// Whether `c` is a Han (CJK ideograph) character.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// Traditional Han characters common in addresses and place names, with their simplified forms.
const TRADITIONAL: &[(char, char)] = &[
    ('車', '车'),
    ('爾', '尔'),
    ('場', '场'),
    ('區', '区'),
    ('號', '号'),
    ('東', '东'),
    ('門', '门'),
    ('園', '园'),
    ('館', '馆'),
    ('華', '华'),
    ('國', '国'),
    ('會', '会'),
    ('廳', '厅'),
    ('書', '书'),
    ('學', '学'),
    ('醫', '医'),
    ('鐵', '铁'),
    ('廣', '广'),
    ('濱', '滨'),
    ('灣', '湾'),
    ('橋', '桥'),
    ('電', '电'),
    ('樓', '楼'),
    ('島', '岛'),
    ('長', '长'),
    ('龍', '龙'),
    ('陽', '阳'),
    ('縣', '县'),
    ('鎮', '镇'),
    ('鄉', '乡'),
    ('寧', '宁'),
    ('興', '兴'),
    ('豐', '丰'),
    ('黃', '黄'),
    ('嶺', '岭'),
    ('臺', '台'),
    ('蘇', '苏'),
    ('廈', '厦'),
    ('葉', '叶'),
    ('義', '义'),
    ('鳳', '凤'),
    ('馬', '马'),
    ('雲', '云'),
    ('貴', '贵'),
    ('漢', '汉'),
    ('與', '与'),
    ('萬', '万'),
    ('濟', '济'),
    ('處', '处'),
    ('樂', '乐'),
    ('藝', '艺'),
    ('術', '术'),
    ('聖', '圣'),
    ('禮', '礼'),
    ('體', '体'),
    ('飯', '饭'),
    ('點', '点'),
    ('綠', '绿'),
    ('貨', '货'),
    ('紅', '红'),
    ('滬', '沪'),
    ('農', '农'),
    ('貿', '贸'),
    ('僑', '侨'),
    ('聯', '联'),
    ('觀', '观'),
    ('們', '们'),
    ('發', '发'),
    ('開', '开'),
    ('關', '关'),
    ('線', '线'),
];

/// The folded form of one character: lower case, no diacritics, ASCII for full-width forms.
/// Punctuation and spaces of any script give a space.
fn fold_char(c: char, out: &mut String) {
    let c = match c as u32 {
        // Full-width ASCII (FF01–FF5E) and the ideographic space.
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    };
    if is_cjk(c) {
        out.push(
            TRADITIONAL
                .iter()
                .find(|(t, _)| *t == c)
                .map_or(c, |(_, s)| *s),
        );
    } else if c.is_alphanumeric() {
        for l in c.to_lowercase() {
            match l {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => out.push('a'),
                'æ' => out.push_str("ae"),
                'ç' | 'ć' | 'č' => out.push('c'),
                'ď' | 'đ' | 'ð' => out.push('d'),
                'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => out.push('e'),
                'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' => out.push('i'),
                'ł' => out.push('l'),
                'ñ' | 'ń' | 'ň' => out.push('n'),
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => out.push('o'),
                'œ' => out.push_str("oe"),
                'ř' => out.push('r'),
                'ß' => out.push_str("ss"),
                'ś' | 'š' | 'ş' => out.push('s'),
                'ť' | 'ţ' => out.push('t'),
                'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => out.push('u'),
                'ý' | 'ÿ' => out.push('y'),
                'ź' | 'ż' | 'ž' => out.push('z'),
                'þ' => out.push_str("th"),
                // Pinyin tone marks fold like other diacritics.
                'ǎ' => out.push('a'),
                'ǐ' => out.push('i'),
                'ǒ' => out.push('o'),
                'ǔ' | 'ǖ' | 'ǘ' | 'ǚ' | 'ǜ' => out.push('u'),
                l => out.push(l),
            }
        }
    } else {
        out.push(' ');
    }
}

/// Common abbreviations of street types, expanded so `Main St` meets `Main Street`.
fn expand(word: &str) -> &str {
    match word {
        "st" | "str" => "street",
        "rd" => "road",
        "ave" | "av" => "avenue",
        "blvd" => "boulevard",
        "dr" => "drive",
        "ln" => "lane",
        "sq" => "square",
        "pl" => "place",
        w => w,
    }
}

/// Fold text into words (Latin and other scripts with spaces) and CJK runs, in order.
pub fn fold(text: &str) -> Vec<String> {
    let mut folded = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // A dash between digits is a range of house numbers (`12-14`), not a break.
        let range = matches!(c, '-' | '–' | '‐')
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if range {
            folded.push('-');
        } else {
            fold_char(c, &mut folded);
        }
    }
    let mut out = Vec::new();
    for word in folded.split_whitespace() {
        // Split a word where it passes between Han and other characters ("88号" → "88", "号").
        let mut piece = String::new();
        let mut piece_cjk = None;
        for c in word.chars() {
            let cjk = is_cjk(c);
            if piece_cjk.is_some_and(|p| p != cjk) {
                out.push(expand(&piece).to_string());
                piece.clear();
            }
            piece.push(c);
            piece_cjk = Some(cjk);
        }
        if !piece.is_empty() {
            out.push(expand(&piece).to_string());
        }
    }
    out
}

/// The folded form of a whole name, as one comparable key (words joined by one space).
pub fn key(text: &str) -> String {
    fold(text).join(" ")
}

/// A house number in folded form: digits with an optional letter or range (`5`, `5a`, `12-14`).
pub fn is_house_number(word: &str) -> bool {
    if let Some((a, b)) = word.split_once('-') {
        return is_house_number(a) && is_house_number(b);
    }
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    digits > 0
        && digits <= 4
        && word[digits..].chars().all(|c| c.is_ascii_lowercase())
        && word.len() - digits <= 2
}

/// How well a place's house number `have` answers the `wanted` one, in 0..=1: the same (1),
/// inside its range (`12` of `12-14`: 0.9), the same number with another letter (0.8), else 0.
pub fn house_number_match(have: &str, wanted: &str) -> f64 {
    let lead = |s: &str| -> Option<u32> {
        let n = s.chars().take_while(char::is_ascii_digit).count();
        s[..n].parse().ok()
    };
    if have == wanted {
        return 1.0;
    }
    if let (Some((a, b)), Some(w)) = (have.split_once('-'), lead(wanted))
        && let (Some(a), Some(b)) = (lead(a), lead(b))
        && (a..=b).contains(&w)
    {
        return 0.9;
    }
    if lead(have).is_some() && lead(have) == lead(wanted) {
        return 0.8;
    }
    0.0
}

/// A folded house number as written in data (`5 A`, `88号`, `12–14`), or `None` when empty.
pub fn house_number(text: &str) -> Option<String> {
    let words: Vec<String> = fold(text)
        .into_iter()
        .filter(|w| w != "号" && w != "no" && w != "nr")
        .collect();
    let joined = words.concat();
    (!joined.is_empty()).then_some(joined)
}

/// The parts of a query: words with their position, and house-number candidates.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Folded words and CJK runs that are not numbers, in order.
    pub words: Vec<String>,
    /// House-number candidates (`5`, `5a`, `88`).
    pub numbers: Vec<String>,
    /// Postcode candidates (all-digit words of five or six digits).
    pub postcodes: Vec<String>,
    /// Every folded word in order, numbers included, for names with numbers in them
    /// (`North-South Street 3`, `5th Avenue`).
    pub tokens: Vec<String>,
}

impl Query {
    /// Split `text` into words, house numbers and postcodes.
    pub fn parse(text: &str) -> Self {
        let words = fold(text);
        let mut q = Query {
            tokens: words.iter().filter(|w| *w != "号").cloned().collect(),
            ..Query::default()
        };
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if w.chars().all(|c| c.is_ascii_digit()) && (5..=6).contains(&w.len()) {
                q.postcodes.push(w.clone());
            } else if is_house_number(w) {
                // A single letter after a number belongs to it ("5 A" → "5a").
                let mut n = w.clone();
                if let Some(next) = words.get(i + 1)
                    && next.len() == 1
                    && next.chars().all(|c| c.is_ascii_lowercase())
                    && n.chars().all(|c| c.is_ascii_digit())
                {
                    n.push_str(next);
                    i += 1;
                }
                q.numbers.push(n);
            } else if w != "号" {
                q.words.push(w.clone());
            }
            i += 1;
        }
        q
    }
}

/// How well `key` (a folded name: words joined by spaces) appears in the query's words, in
/// 0..=1, how many of the query's characters the best match covered, and which words it used.
///
/// Latin names are compared with windows of consecutive query words (spaces ignored) by
/// Damerau–Levenshtein similarity, so `manerheimintie` meets `mannerheimintie` and a name
/// written as two words meets one written as one. A window that is a prefix of at least four
/// letters of a longer name scores a little less than the whole (typing in progress). CJK names
/// are found anywhere inside the query's CJK runs by approximate substring matching, since
/// Chinese addresses run city, district, street and number together without spaces.
pub fn name_similarity(key: &str, words: &[String]) -> (f64, usize, Range<usize>) {
    let key_chars: Vec<char> = key.chars().filter(|c| *c != ' ').collect();
    if key_chars.is_empty() || words.is_empty() {
        return (0.0, 0, 0..0);
    }
    if key_chars.iter().any(|c| is_cjk(*c)) {
        return cjk_similarity(&key_chars, words);
    }
    let mut best = (0.0, 0, 0..0);
    for start in 0..words.len() {
        let mut window: Vec<char> = Vec::new();
        for (n, w) in words.iter().skip(start).take(4).enumerate() {
            if w.chars().any(is_cjk) {
                break;
            }
            window.extend(w.chars());
            let d = damerau_levenshtein(&window, &key_chars);
            let longest = window.len().max(key_chars.len());
            let mut sim = 1.0 - d as f64 / longest as f64;
            if window.len() >= 4 && window.len() < key_chars.len() {
                let p = damerau_levenshtein(&window, &key_chars[..window.len()]);
                sim = sim.max(0.9 * (1.0 - p as f64 / window.len() as f64));
            }
            if sim > best.0 || (sim == best.0 && window.len() > best.1) {
                best = (sim, window.len(), start..start + n + 1);
            }
        }
    }
    best
}

/// A CJK name inside the query's CJK runs; the run it is in stays open to the city and district,
/// which share it.
fn cjk_similarity(key: &[char], words: &[String]) -> (f64, usize, Range<usize>) {
    let mut best = (0.0, 0, 0..0);
    for w in words {
        let text: Vec<char> = w.chars().collect();
        if !text.iter().any(|c| is_cjk(*c)) {
            continue;
        }
        let (d, len) = best_substring(key, &text);
        let sim = 1.0 - d as f64 / key.len() as f64;
        if sim > best.0 {
            best = (sim, len, 0..0);
        }
    }
    best
}

/// The smallest edit distance between `pattern` and any substring of `text` (Sellers 1980),
/// with the length of that substring.
fn best_substring(pattern: &[char], text: &[char]) -> (usize, usize) {
    let m = pattern.len();
    // prev[i] = (distance of pattern[..i] against a substring ending here, its start)
    let mut prev: Vec<(usize, usize)> = (0..=m).map(|i| (i, 0)).collect();
    let mut best = (m, 0);
    for (j, &t) in text.iter().enumerate() {
        let mut cur = vec![(0, j + 1); m + 1];
        for i in 1..=m {
            let sub = (
                prev[i - 1].0 + usize::from(pattern[i - 1] != t),
                prev[i - 1].1,
            );
            let del = (prev[i].0 + 1, prev[i].1);
            let ins = (cur[i - 1].0 + 1, cur[i - 1].1);
            cur[i] = [sub, del, ins]
                .into_iter()
                .min_by_key(|x| x.0)
                .unwrap_or(sub);
        }
        if cur[m].0 < best.0 || (cur[m].0 == best.0 && best.1 == 0) {
            best = (cur[m].0, j + 1 - cur[m].1);
        }
        prev = cur;
    }
    best
}

/// The distinct character n-grams of folded words: trigrams of Latin text (spaces dropped, so
/// words written apart or together share them; a word of one or two letters is one gram), and
/// bigrams of Han text (Chinese words are two characters long, mostly). Adjacent words also
/// give the grams across their join.
pub fn grams(words: &[String]) -> Vec<[char; 3]> {
    let mut out = Vec::new();
    let mut add = |chars: &[char], n: usize| {
        if chars.is_empty() {
            return;
        }
        if chars.len() < n {
            let mut g = ['\0'; 3];
            g[..chars.len()].copy_from_slice(chars);
            out.push(g);
            return;
        }
        for w in chars.windows(n) {
            let mut g = ['\0'; 3];
            g[..n].copy_from_slice(w);
            out.push(g);
        }
    };
    let latin: Vec<char> = words
        .iter()
        .filter(|w| !w.chars().any(is_cjk))
        .flat_map(|w| w.chars().filter(|c| *c != ' '))
        .collect();
    add(&latin, 3);
    for w in words.iter().filter(|w| w.chars().any(is_cjk)) {
        let chars: Vec<char> = w.chars().filter(|c| *c != ' ').collect();
        add(&chars, 2);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Edit distance with adjacent transpositions (optimal string alignment).
pub fn damerau_levenshtein(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_diacritics_and_splits_scripts() {
        assert_eq!(
            fold("Etelä-Esplanadi 2 A"),
            ["etela", "esplanadi", "2", "a"]
        );
        assert_eq!(fold("合肥市长江中路８８号"), ["合肥市长江中路", "88", "号"]);
        assert_eq!(fold("Main St."), ["main", "street"]);
        assert_eq!(key("Große Straße"), "grosse strasse");
        assert_eq!(key("赫爾辛基中央車站"), "赫尔辛基中央车站");
    }

    #[test]
    fn a_query_gives_its_numbers_and_postcode() {
        let q = Query::parse("Mannerheimintie 5 A, 00100 Helsinki");
        assert_eq!(q.words, ["mannerheimintie", "helsinki"]);
        assert_eq!(q.numbers, ["5a"]);
        assert_eq!(q.postcodes, ["00100"]);
        let q = Query::parse("合肥市长江中路88号");
        assert_eq!(q.words, ["合肥市长江中路"]);
        assert_eq!(q.numbers, ["88"]);
    }

    #[test]
    fn names_match_through_typos_joins_and_scripts() {
        let words = |s: &str| Query::parse(s).words;
        let (sim, _, used) = name_similarity("mannerheimintie", &words("Manerheimintie 5"));
        assert_eq!(used, 0..1);
        assert!(sim > 0.9 && sim < 1.0, "{sim}");
        let (sim, _, _) = name_similarity("aleksanterinkatu", &words("aleksanterin katu"));
        assert_eq!(sim, 1.0);
        let (sim, _, _) = name_similarity("mannerheimintie", &words("Helsinki"));
        assert!(sim < 0.5, "{sim}");
        let (sim, len, _) = name_similarity("长江中路", &words("合肥市长江中路88号"));
        assert_eq!((sim, len), (1.0, 4));
        let (sim, _, _) = name_similarity("长江中路", &words("长江仲路"));
        assert!((sim - 0.75).abs() < 1e-9, "{sim}");
        assert_eq!(damerau_levenshtein(&['a', 'b'], &['b', 'a']), 1);
        assert_eq!(fold("Yrjönkatu 12–14"), ["yrjonkatu", "12-14"]);
        assert_eq!(house_number_match("12-14", "13"), 0.9);
        assert_eq!(house_number_match("5b", "5a"), 0.8);
        assert_eq!(house_number_match("5", "6"), 0.0);
    }
}
