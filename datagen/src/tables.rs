//! The word lists the generator draws from. Lists are ordered from common to
//! rare because [`crate::gen`] picks with a bias towards the front, which
//! gives the realistic clumping of "Müller" and "Thomas" that makes duplicate
//! matching hard. Every string here must be encodable in Windows-1252 (a test
//! checks it): no "ş", no "ı", no "ł".

/// A dealer's catchment: the city itself and the towns around it.
pub(crate) struct Region {
    pub city: &'static str,
    /// First two digits of the city's own postcodes.
    pub prefix: &'static str,
    /// Range of the city's postcodes (inclusive); customers in the city get one in between.
    pub postcodes: (u32, u32),
    /// Telephone area code of the city, with the leading 0.
    pub area: &'static str,
    /// Towns around the city: name, postcode, area code.
    pub towns: &'static [(&'static str, &'static str, &'static str)],
    /// Name of the demo dealer in this city.
    pub dealer: &'static str,
}

pub(crate) const REGIONS: &[Region] = &[
    Region {
        city: "München",
        prefix: "80",
        postcodes: (80331, 81929),
        area: "089",
        towns: &[
            ("Dachau", "85221", "08131"),
            ("Freising", "85354", "08161"),
            ("Erding", "85435", "08122"),
            ("Fürstenfeldbruck", "82256", "08141"),
            ("Starnberg", "82319", "08151"),
            ("Unterhaching", "82008", "089"),
        ],
        dealer: "Autohaus Müller GmbH",
    },
    Region {
        city: "Hamburg",
        prefix: "22",
        postcodes: (20095, 22769),
        area: "040",
        towns: &[
            ("Norderstedt", "22844", "040"),
            ("Pinneberg", "25421", "04101"),
            ("Ahrensburg", "22926", "04102"),
            ("Buxtehude", "21614", "04161"),
            ("Wedel", "22880", "04103"),
        ],
        dealer: "Autohaus Schröder & Söhne GmbH",
    },
    Region {
        city: "Berlin",
        prefix: "12",
        postcodes: (10115, 14199),
        area: "030",
        towns: &[
            ("Potsdam", "14467", "0331"),
            ("Falkensee", "14612", "03322"),
            ("Bernau bei Berlin", "16321", "03338"),
            ("Königs Wusterhausen", "15711", "03375"),
            ("Oranienburg", "16515", "03301"),
        ],
        dealer: "Autohaus Weiß KG",
    },
    Region {
        city: "Köln",
        prefix: "50",
        postcodes: (50667, 51149),
        area: "0221",
        towns: &[
            ("Frechen", "50226", "02234"),
            ("Hürth", "50354", "02233"),
            ("Bergisch Gladbach", "51465", "02202"),
            ("Leverkusen", "51373", "0214"),
            ("Pulheim", "50259", "02238"),
        ],
        dealer: "Autohaus am Rhein Jürgens GmbH",
    },
    Region {
        city: "Frankfurt am Main",
        prefix: "60",
        postcodes: (60306, 60599),
        area: "069",
        towns: &[
            ("Offenbach am Main", "63065", "069"),
            ("Bad Homburg vor der Höhe", "61348", "06172"),
            ("Eschborn", "65760", "06196"),
            ("Neu-Isenburg", "63263", "06102"),
            ("Oberursel", "61440", "06171"),
        ],
        dealer: "Autohaus Özdemir GmbH",
    },
    Region {
        city: "Stuttgart",
        prefix: "70",
        postcodes: (70173, 70629),
        area: "0711",
        towns: &[
            ("Esslingen am Neckar", "73728", "0711"),
            ("Ludwigsburg", "71634", "07141"),
            ("Böblingen", "71032", "07031"),
            ("Sindelfingen", "71063", "07031"),
            ("Fellbach", "70734", "0711"),
            ("Leonberg", "71229", "07152"),
        ],
        dealer: "Autohaus Bäuerle GmbH & Co. KG",
    },
    Region {
        city: "Düsseldorf",
        prefix: "40",
        postcodes: (40210, 40629),
        area: "0211",
        towns: &[
            ("Neuss", "41460", "02131"),
            ("Ratingen", "40878", "02102"),
            ("Hilden", "40721", "02103"),
            ("Mettmann", "40822", "02104"),
            ("Meerbusch", "40667", "02132"),
        ],
        dealer: "Autohaus Schmitz e.K.",
    },
    Region {
        city: "Leipzig",
        prefix: "04",
        postcodes: (4103, 4357),
        area: "0341",
        towns: &[
            ("Markkleeberg", "04416", "0341"),
            ("Taucha", "04425", "034298"),
            ("Schkeuditz", "04435", "034204"),
            ("Delitzsch", "04509", "034202"),
            ("Grimma", "04668", "03437"),
        ],
        dealer: "Autohaus Großmann GmbH",
    },
    Region {
        city: "Dortmund",
        prefix: "44",
        postcodes: (44135, 44388),
        area: "0231",
        towns: &[
            ("Lünen", "44532", "02306"),
            ("Castrop-Rauxel", "44575", "02305"),
            ("Schwerte", "58239", "02304"),
            ("Unna", "59423", "02303"),
            ("Witten", "58452", "02302"),
        ],
        dealer: "Autohaus Brückner GmbH",
    },
    Region {
        city: "Essen",
        prefix: "45",
        postcodes: (45127, 45359),
        area: "0201",
        towns: &[
            ("Mülheim an der Ruhr", "45468", "0208"),
            ("Gelsenkirchen", "45879", "0209"),
            ("Bottrop", "46236", "02041"),
            ("Hattingen", "45525", "02324"),
            ("Velbert", "42551", "02051"),
        ],
        dealer: "Autohaus Böhm & Partner GmbH",
    },
    Region {
        city: "Bremen",
        prefix: "28",
        postcodes: (28195, 28779),
        area: "0421",
        towns: &[
            ("Delmenhorst", "27749", "04221"),
            ("Achim", "28832", "04202"),
            ("Stuhr", "28816", "0421"),
            ("Lilienthal", "28865", "04298"),
            ("Weyhe", "28844", "0421"),
        ],
        dealer: "Autohaus Hansa Meyer GmbH",
    },
    Region {
        city: "Dresden",
        prefix: "01",
        postcodes: (1067, 1328),
        area: "0351",
        towns: &[
            ("Radebeul", "01445", "0351"),
            ("Freital", "01705", "0351"),
            ("Pirna", "01796", "03501"),
            ("Meißen", "01662", "03521"),
            ("Heidenau", "01809", "03529"),
        ],
        dealer: "Autohaus Elbtal Schäfer GmbH",
    },
    Region {
        city: "Hannover",
        prefix: "30",
        postcodes: (30159, 30669),
        area: "0511",
        towns: &[
            ("Langenhagen", "30851", "0511"),
            ("Garbsen", "30823", "05131"),
            ("Laatzen", "30880", "0511"),
            ("Hemmingen", "30966", "0511"),
            ("Lehrte", "31275", "05132"),
        ],
        dealer: "Autohaus Krüger GmbH",
    },
    Region {
        city: "Nürnberg",
        prefix: "90",
        postcodes: (90402, 90491),
        area: "0911",
        towns: &[
            ("Fürth", "90762", "0911"),
            ("Erlangen", "91052", "09131"),
            ("Schwabach", "91126", "09122"),
            ("Zirndorf", "90513", "0911"),
            ("Stein", "90547", "0911"),
        ],
        dealer: "Autohaus Frankenland Fuchs GmbH",
    },
    Region {
        city: "Münster",
        prefix: "48",
        postcodes: (48143, 48167),
        area: "0251",
        towns: &[
            ("Greven", "48268", "02571"),
            ("Telgte", "48291", "02504"),
            ("Senden", "48308", "02597"),
            ("Havixbeck", "48329", "02507"),
            ("Nottuln", "48301", "02502"),
        ],
        dealer: "Autohaus Lütke-Wöstmann GmbH",
    },
    Region {
        city: "Freiburg im Breisgau",
        prefix: "79",
        postcodes: (79098, 79117),
        area: "0761",
        towns: &[
            ("Emmendingen", "79312", "07641"),
            ("Denzlingen", "79211", "07666"),
            ("Gundelfingen", "79194", "0761"),
            ("Kirchzarten", "79199", "07661"),
            ("Breisach am Rhein", "79206", "07667"),
        ],
        dealer: "Autohaus Schwarzwald Dreßler GmbH",
    },
    Region {
        city: "Kiel",
        prefix: "24",
        postcodes: (24103, 24159),
        area: "0431",
        towns: &[
            ("Kronshagen", "24119", "0431"),
            ("Altenholz", "24161", "0431"),
            ("Preetz", "24211", "04342"),
            ("Eckernförde", "24340", "04351"),
            ("Heikendorf", "24226", "0431"),
        ],
        dealer: "Autohaus Petersen an der Förde GmbH",
    },
    Region {
        city: "Rostock",
        prefix: "18",
        postcodes: (18055, 18147),
        area: "0381",
        towns: &[
            ("Bad Doberan", "18209", "038203"),
            ("Sanitz", "18190", "038209"),
            ("Kritzmow", "18198", "0381"),
            ("Dummerstorf", "18196", "038208"),
            ("Kröpelin", "18236", "038292"),
        ],
        dealer: "Autohaus Ostsee Möller GmbH",
    },
    Region {
        city: "Augsburg",
        prefix: "86",
        postcodes: (86150, 86199),
        area: "0821",
        towns: &[
            ("Friedberg", "86316", "0821"),
            ("Königsbrunn", "86343", "08231"),
            ("Gersthofen", "86368", "0821"),
            ("Neusäß", "86356", "0821"),
            ("Stadtbergen", "86391", "0821"),
        ],
        dealer: "Autohaus Strauß GmbH",
    },
    Region {
        city: "Regensburg",
        prefix: "93",
        postcodes: (93047, 93059),
        area: "0941",
        towns: &[
            ("Neutraubling", "93073", "09401"),
            ("Lappersdorf", "93138", "0941"),
            ("Regenstauf", "93128", "09402"),
            ("Pentling", "93080", "0941"),
            ("Obertraubling", "93083", "09401"),
        ],
        dealer: "Autohaus Donau Hösl GmbH",
    },
    Region {
        city: "Würzburg",
        prefix: "97",
        postcodes: (97070, 97084),
        area: "0931",
        towns: &[
            ("Höchberg", "97204", "0931"),
            ("Veitshöchheim", "97209", "0931"),
            ("Kitzingen", "97318", "09321"),
            ("Ochsenfurt", "97199", "09331"),
            ("Gerbrunn", "97218", "0931"),
        ],
        dealer: "Autohaus Mainfranken Sühling GmbH",
    },
    Region {
        city: "Mannheim",
        prefix: "68",
        postcodes: (68159, 68309),
        area: "0621",
        towns: &[
            ("Ludwigshafen am Rhein", "67059", "0621"),
            ("Viernheim", "68519", "06204"),
            ("Weinheim", "69469", "06201"),
            ("Schwetzingen", "68723", "06202"),
            ("Heddesheim", "68542", "06203"),
        ],
        dealer: "Autohaus Kurpfalz Günther GmbH",
    },
    Region {
        city: "Karlsruhe",
        prefix: "76",
        postcodes: (76131, 76229),
        area: "0721",
        towns: &[
            ("Ettlingen", "76275", "07243"),
            ("Stutensee", "76297", "07244"),
            ("Rheinstetten", "76287", "07242"),
            ("Bruchsal", "76646", "07251"),
            ("Pfinztal", "76327", "07240"),
        ],
        dealer: "Autohaus Fächerstadt Kühn GmbH",
    },
    Region {
        city: "Kassel",
        prefix: "34",
        postcodes: (34117, 34134),
        area: "0561",
        towns: &[
            ("Baunatal", "34225", "0561"),
            ("Vellmar", "34246", "0561"),
            ("Lohfelden", "34253", "0561"),
            ("Kaufungen", "34260", "05605"),
            ("Fuldatal", "34233", "0561"),
        ],
        dealer: "Autohaus Wilhelmshöhe Jäger GmbH",
    },
    Region {
        city: "Saarbrücken",
        prefix: "66",
        postcodes: (66111, 66133),
        area: "0681",
        towns: &[
            ("Völklingen", "66333", "06898"),
            ("Sulzbach/Saar", "66280", "06897"),
            ("Püttlingen", "66346", "06898"),
            ("St. Ingbert", "66386", "06894"),
            ("Riegelsberg", "66292", "06806"),
        ],
        dealer: "Autohaus Saarland Becker GmbH",
    },
    Region {
        city: "Erfurt",
        prefix: "99",
        postcodes: (99084, 99099),
        area: "0361",
        towns: &[
            ("Arnstadt", "99310", "03628"),
            ("Gotha", "99867", "03621"),
            ("Sömmerda", "99610", "03634"),
            ("Weimar", "99423", "03643"),
            ("Apolda", "99510", "03644"),
        ],
        dealer: "Autohaus Thüringen Köhler GmbH",
    },
    Region {
        city: "Magdeburg",
        prefix: "39",
        postcodes: (39104, 39130),
        area: "0391",
        towns: &[
            ("Schönebeck (Elbe)", "39218", "03928"),
            ("Barleben", "39179", "039203"),
            ("Wolmirstedt", "39326", "039201"),
            ("Biederitz", "39175", "039292"),
            ("Burg", "39288", "03921"),
        ],
        dealer: "Autohaus Börde Neumann GmbH",
    },
    Region {
        city: "Osnabrück",
        prefix: "49",
        postcodes: (49074, 49090),
        area: "0541",
        towns: &[
            ("Georgsmarienhütte", "49124", "05401"),
            ("Bramsche", "49565", "05461"),
            ("Wallenhorst", "49134", "05407"),
            ("Belm", "49191", "05406"),
            ("Melle", "49324", "05422"),
        ],
        dealer: "Autohaus Große-Wöstmann GmbH",
    },
    Region {
        city: "Ulm",
        prefix: "89",
        postcodes: (89073, 89081),
        area: "0731",
        towns: &[
            ("Neu-Ulm", "89231", "0731"),
            ("Blaustein", "89134", "07304"),
            ("Senden", "89250", "07307"),
            ("Erbach", "89155", "07305"),
            ("Langenau", "89129", "07345"),
        ],
        dealer: "Autohaus Münsterblick Wörner GmbH",
    },
    Region {
        city: "Bielefeld",
        prefix: "33",
        postcodes: (33602, 33739),
        area: "0521",
        towns: &[
            ("Gütersloh", "33330", "05241"),
            ("Herford", "32049", "05221"),
            ("Bad Salzuflen", "32105", "05222"),
            ("Oerlinghausen", "33813", "05202"),
            ("Steinhagen", "33803", "05204"),
        ],
        dealer: "Autohaus Teutoburger Wald Stüwe GmbH",
    },
];

pub(crate) const MALE_FIRST: &[&str] = &[
    "Thomas", "Michael", "Andreas", "Peter", "Stefan", "Christian", "Frank", "Markus",
    "Wolfgang", "Klaus", "Jürgen", "Martin", "Uwe", "Bernd", "Matthias", "Alexander",
    "Hans", "Sebastian", "Tobias", "Jan", "Florian", "Dieter", "Günter", "Horst",
    "Manfred", "Werner", "Ralf", "Jens", "Jörg", "Sven", "Dirk", "Tim", "Daniel",
    "Lukas", "Jonas", "Felix", "Maximilian", "Paul", "Leon", "Niklas", "Fabian",
    "Dominik", "Kai", "Helmut", "Gerd", "Rüdiger", "Björn", "Sören", "Hans-Jürgen",
    "Karl-Heinz", "Heinz", "Olaf", "Timo", "Moritz", "Ole", "Finn", "Mehmet", "Ali",
    "Murat", "Emre", "Piotr", "René", "André", "Jérôme", "Mustafa", "Hüseyin",
    "Björn-Ole", "Lars", "Hendrik", "Malte", "Götz", "Sönke",
];

pub(crate) const FEMALE_FIRST: &[&str] = &[
    "Sabine", "Petra", "Andrea", "Claudia", "Susanne", "Monika", "Birgit", "Nicole",
    "Stefanie", "Katrin", "Anja", "Heike", "Karin", "Ursula", "Renate", "Gabriele",
    "Julia", "Anna", "Laura", "Sarah", "Lisa", "Lena", "Melanie", "Sandra", "Christina",
    "Jessica", "Jana", "Kerstin", "Silke", "Martina", "Angelika", "Brigitte", "Ingrid",
    "Gisela", "Bärbel", "Jutta", "Annegret", "Käthe", "Doris", "Marie", "Sophie",
    "Hannah", "Lea", "Mia", "Emma", "Johanna", "Franziska", "Elif", "Fatma", "Ayse",
    "Zeynep", "Agnieszka", "Chloé", "Renée", "Anne-Kathrin", "Maren",
    "Wiebke", "Frauke", "Dörte", "Jördis",
];

pub(crate) const LAST: &[&str] = &[
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
    "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann",
    "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier", "Lehmann",
    "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer",
    "Huber", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung",
    "Hahn", "Schubert", "Vogel", "Friedrich", "Keller", "Günther", "Frank", "Berger",
    "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht", "Schuster",
    "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher", "Krämer",
    "Vogt", "Stein", "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt",
    "Haas", "Schreiber", "Graf", "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn",
    "Pohl", "Engel", "Horn", "Busch", "Bergmann", "Thomas", "Voigt", "Sauer", "Arnold",
    "Wolff", "Pfeiffer", "Özdemir", "Yilmaz", "Kaya", "Demir", "Çelik", "Sahin",
    "Kowalski", "Nowak", "Wójcik", "Lewandowski", "Nguyen", "Popescu", "Rossi",
    "Papadopoulos", "Ivanov", "Strauß", "Dreßler", "Nießen", "Großmann", "Weißmüller",
    "Große-Wöstmann", "von Bülow", "Müller-Lüdenscheidt", "Brückner", "Jürgens",
    "Sühling", "Hösl", "Stüwe", "Wörner", "Bäuerle", "Fößel",
];

/// Streets found in almost every German town. Ordered by frequency.
pub(crate) const STREETS: &[&str] = &[
    "Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße",
    "Bergstraße", "Birkenweg", "Lindenstraße", "Kirchstraße", "Waldstraße",
    "Ringstraße", "Schillerstraße", "Goethestraße", "Wiesenweg", "Am Sportplatz",
    "Friedrich-Ebert-Straße", "Mühlenweg", "Rosenweg", "Ahornweg", "Lindenallee",
    "Mozartstraße", "Beethovenstraße", "Parkstraße", "Feldweg", "Am Markt",
    "Kastanienallee", "Sonnenstraße", "Talstraße", "Brückenstraße", "Jahnstraße",
    "Uhlandstraße", "Blumenstraße", "Am Hang", "Zur Mühle", "Grüner Weg", "Erlenweg",
    "Eichendorffstraße", "Lessingstraße", "Heinrich-Heine-Straße",
    "Käthe-Kollwitz-Straße", "Sophienstraße", "Weißdornweg", "Fließstraße",
    "Kirchplatz", "Im Winkel", "Am Mühlbach", "Königsallee", "Rathausplatz",
    "Marktstraße", "Poststraße", "Buchenweg", "Tannenweg", "Fasanenweg", "Drosselweg",
    "Amselweg", "Am Schloßpark", "Nußbaumweg", "Über dem Bach", "Schützenstraße",
];

/// Streets of industrial estates, for company customers.
pub(crate) const BUSINESS_STREETS: &[&str] = &[
    "Industriestraße", "Gewerbestraße", "Robert-Bosch-Straße", "Carl-Benz-Straße",
    "Max-Planck-Straße", "Otto-Hahn-Straße", "Im Gewerbegebiet", "Siemensstraße",
    "Daimlerstraße", "Rudolf-Diesel-Straße", "Am Güterbahnhof", "Hafenstraße",
];

pub(crate) const FREEMAIL: &[(&str, u32)] = &[
    ("web.de", 25),
    ("gmx.de", 22),
    ("gmail.com", 20),
    ("t-online.de", 15),
    ("outlook.de", 8),
];

pub(crate) const MOBILE_PREFIXES: &[&str] = &[
    "0151", "0152", "0157", "0159", "0160", "0162", "0163", "0170", "0171", "0172",
    "0173", "0174", "0175", "0176", "0177", "0178", "0179",
];

/// Company name patterns. `{L}`/`{M}` are last names, `{C}` is the town,
/// `{W}` a word from [`COMPANY_WORDS`]. The flag marks businesses that run fleets.
pub(crate) const COMPANIES: &[(&str, bool)] = &[
    ("Pflegedienst {W} GmbH", true),
    ("Ambulanter Pflegedienst {L}", true),
    ("Stadtwerke {C}", true),
    ("Bäckerei {L}", false),
    ("Bäckerei {L} GmbH", true),
    ("{L} Bau GmbH", true),
    ("{L}, {M} & Partner GbR", false),
    ("Elektro {L} GmbH & Co. KG", true),
    ("Sanitär- und Heizungstechnik {L} GmbH", true),
    ("Malerbetrieb {L} e.K.", false),
    ("Taxi {L}", true),
    ("Fahrschule {L}", true),
    ("Gärtnerei {L}", false),
    ("Autovermietung {C} GmbH", true),
    ("Hausmeisterservice {L} UG (haftungsbeschränkt)", true),
    ("Kurierdienst {W} GmbH", true),
    ("Caritas Sozialstation {C}", true),
    ("Diakoniestation {C} e.V.", true),
    ("Steuerberatung {L} & Kollegen", false),
    ("Physiotherapie {L}", false),
    ("{L} Immobilien GmbH", false),
    ("Tischlerei {L}", false),
    ("Zahnarztpraxis Dr. {L}", false),
    ("Getränke {L} GmbH", true),
    ("Bäckerei \"Zur Mühle\" {L} OHG", false),
];

pub(crate) const COMPANY_WORDS: &[&str] = &[
    "Sonnenschein", "Lichtblick", "Regenbogen", "Herzenswärme", "Lebensfreude",
    "Blitz", "Flink", "Komet", "Pfeil", "Nordlicht",
];

/// A model of the demo brand, with the years it was sold.
pub(crate) struct Model {
    pub name: &'static str,
    /// Two VIN characters (positions 4-5) naming the model line.
    pub code: &'static str,
    pub from: i32,
    /// Last year built; `None` while still in production.
    pub until: Option<i32>,
    /// Vans carry the brand's commercial-vehicle WMI.
    pub commercial: bool,
    /// Relative frequency among private customers.
    pub weight: u32,
    /// Relative frequency in company fleets.
    pub fleet_weight: u32,
}

pub(crate) const MAKE: &str = "Nordwagen";
/// World manufacturer identifiers of the demo brand: passenger cars, vans.
pub(crate) const WMI_CAR: &str = "WNW";
pub(crate) const WMI_VAN: &str = "WNV";
/// Assembly plant codes (VIN position 11).
pub(crate) const PLANTS: &[u8] = b"NBKRHS";

pub(crate) const MODELS: &[Model] = &[
    Model { name: "Fjord", code: "FJ", from: 2008, until: None, commercial: false, weight: 22, fleet_weight: 10 },
    Model { name: "Kappa", code: "KP", from: 2008, until: Some(2021), commercial: false, weight: 14, fleet_weight: 20 },
    Model { name: "Fjord Kombi", code: "FK", from: 2010, until: None, commercial: false, weight: 12, fleet_weight: 12 },
    Model { name: "Ostra Kombi", code: "OK", from: 2008, until: None, commercial: false, weight: 10, fleet_weight: 14 },
    Model { name: "Vinter", code: "VT", from: 2014, until: None, commercial: false, weight: 10, fleet_weight: 4 },
    Model { name: "Ostra", code: "OS", from: 2008, until: Some(2019), commercial: false, weight: 8, fleet_weight: 4 },
    Model { name: "E-Lumen", code: "EL", from: 2019, until: None, commercial: false, weight: 8, fleet_weight: 10 },
    Model { name: "Kappa Cross", code: "KX", from: 2016, until: None, commercial: false, weight: 8, fleet_weight: 6 },
    Model { name: "Sela", code: "SL", from: 2008, until: Some(2014), commercial: false, weight: 6, fleet_weight: 2 },
    Model { name: "Vinter Plus", code: "VP", from: 2018, until: None, commercial: false, weight: 5, fleet_weight: 2 },
    Model { name: "E-Lumen Cross", code: "EX", from: 2023, until: None, commercial: false, weight: 4, fleet_weight: 4 },
    Model { name: "Havn", code: "HV", from: 2008, until: None, commercial: true, weight: 3, fleet_weight: 16 },
    Model { name: "Havn Kasten", code: "HK", from: 2008, until: None, commercial: true, weight: 2, fleet_weight: 14 },
];
