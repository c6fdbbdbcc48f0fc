-- Sample CRM database for the profile sync connector (built by connector.sample_data).
-- 200 customers, updated 2026-11-18 .. 2026-11-21 (naive timestamps, settings timezone).
CREATE TABLE customers (
  customer_id TEXT PRIMARY KEY,
  email TEXT,
  first_name TEXT,
  last_name TEXT,
  city TEXT,
  tier TEXT,
  ltv NUMERIC,
  last_purchase_at DATETIME,
  newsletter INTEGER,
  notes TEXT,
  updated_at DATETIME NOT NULL
);
CREATE INDEX ix_customers_updated_at ON customers (updated_at);
INSERT INTO customers VALUES ('C00001', 'customer.1@example.com', 'Αθηνά', 'Jansen', '''s-Hertogenbosch', 'SILVER', 1296.76, '2026-06-08 14:20:00', 0, 'A+ customer / VIP', '2026-11-19 10:04:02');
INSERT INTO customers VALUES ('C00002', 'vera.2@example.com', 'Vera', 'de Vries', 'Rotterdam', NULL, 932.09, '2026-08-01 11:17:00', 0, NULL, '2026-11-20 07:34:03');
INSERT INTO customers VALUES ('C00003', 'giulia.3@example.com', 'Giulia', 'Nguyễn', 'Amsterdam', 'Platinum', 566.65, '2026-07-04 15:27:00', 1, 'says "call me after 5"', '2026-11-21 04:13:37');
INSERT INTO customers VALUES ('C00004', 'customer.4@example.com', '李', 'Visser', 'Groningen', 'Gold', 2029.23, '2026-07-13 21:24:00', 0, 'prefers e-mail, not phone', '2026-11-18 08:59:39');
INSERT INTO customers VALUES ('C00005', 'customer.5@example.com', 'Xóchitl', 'Dubois', '''s-Hertogenbosch', 'bronze', 408.42, '2026-11-13 18:42:00', 0, '100% € paid', '2026-11-19 10:38:56');
INSERT INTO customers VALUES ('C00006', 'wojciech.6@example.com', 'Wojciech', 'Rossi', '''s-Hertogenbosch', 'Platinum', 723.49, '2026-11-07 20:36:00', 1, '100% € paid', '2026-11-20 20:49:07');
INSERT INTO customers VALUES ('C00007', 'customer.7@example.com', 'Émile', 'Visser', 'Zürich', 'Gold', 1085.23, '2026-11-08 14:29:00', 0, 'line one
line two', '2026-11-21 04:04:58');
INSERT INTO customers VALUES ('C00008', 'customer.8@example.com', 'Александр', 'Nguyễn', 'Eindhoven', NULL, 1238.72, '2026-06-12 08:06:00', 0, 'plus+sign and slash/', '2026-11-18 02:32:12');
INSERT INTO customers VALUES ('C00009', 'customer.9@example.com', 'Małgorzata', 'Jansen', 'Amsterdam', 'Platinum', 1441.08, '2026-09-06 08:51:00', 1, 'likes 50% discounts & free shipping', '2026-11-19 03:51:53');
INSERT INTO customers VALUES ('C00010', 'customer.10@example.com', 'Αθηνά', 'van den Berg', '''s-Hertogenbosch', 'bronze', 2490.91, '2026-10-05 13:47:00', 0, 'tab	inside', '2026-11-20 04:11:28');
INSERT INTO customers VALUES ('C00011', 'customer.11@example.com', '李', 'Kowalski', 'São Paulo', NULL, 2497.03, NULL, 0, '', '2026-11-21 05:22:44');
INSERT INTO customers VALUES ('C00012', 'customer.12@example.com', 'José', 'Jansen', 'São Paulo', NULL, 710.87, '2026-07-05 10:26:00', 1, '100% € paid', '2026-11-18 22:22:09');
INSERT INTO customers VALUES ('C00013', 'nuno.13@example.com', 'Nuno', 'Ferreira', 'Utrecht', 'Platinum', 2272.24, '2026-07-12 16:52:00', 0, 'line one
line two', '2026-11-19 20:30:00');
INSERT INTO customers VALUES ('C00014', 'ines.14@example.com', 'Ines', 'Ferreira', 'Amsterdam', 'Gold', 2245.59, '2026-08-11 18:42:00', 0, '', '2026-11-20 06:24:50');
INSERT INTO customers VALUES ('C00015', 'vera.15@example.com', 'Vera', 'Smith-Jones', 'Zürich', 'SILVER', 612.59, '2026-09-07 17:45:00', 1, 'prefers e-mail, not phone', '2026-11-21 18:59:10');
INSERT INTO customers VALUES ('C00016', 'customer.16@example.com', 'Xóchitl', 'Nguyễn', 'Köln', 'Platinum', 2315.51, '2026-09-08 18:41:00', 0, 'line one
line two', '2026-11-18 19:32:26');
INSERT INTO customers VALUES ('C00017', '  qiu.17@Example.COM ', 'Qiu', 'Smith-Jones', 'São Paulo', 'bronze', 2027.23, '2026-09-11 17:47:00', 0, 'prefers e-mail, not phone', '2026-11-19 05:18:11');
INSERT INTO customers VALUES ('C00018', 'customer.18@example.com', 'Kateřina', 'Rossi', 'Zürich', 'bronze', 309.85, '2026-06-13 10:40:00', 1, 'plus+sign and slash/', '2026-11-20 05:47:24');
INSERT INTO customers VALUES ('C00019', 'customer.19@example.com', 'Chloé', 'van den Berg', 'Rotterdam', 'Gold', 616.22, '2026-09-16 19:24:00', 0, 'likes 50% discounts & free shipping', '2026-11-21 07:04:39');
INSERT INTO customers VALUES ('C00020', 'wojciech.20@example.com', 'Wojciech', 'Visser', 'Amsterdam', 'Gold', 952.07, '2026-06-03 16:53:00', 0, 'says "call me after 5"', '2026-11-18 20:59:10');
INSERT INTO customers VALUES ('C00021', 'nuno.21@example.com', 'Nuno', 'Ferreira', 'Rotterdam', NULL, 2387.02, '2026-07-14 19:18:00', 1, 'tab	inside', '2026-11-19 02:56:00');
INSERT INTO customers VALUES ('C00022', 'customer.22@example.com', 'Małgorzata', 'García', 'São Paulo', 'bronze', 2417.42, NULL, 0, '', '2026-11-20 17:13:08');
INSERT INTO customers VALUES ('C00023', 'vera.23@example.com', 'Vera', 'Müller', 'Utrecht', 'Gold', NULL, '2026-11-11 19:05:00', 0, '', '2026-11-21 05:04:36');
INSERT INTO customers VALUES ('C00024', 'customer.24@example.com', 'Jürgen', 'Kowalski', 'Köln', NULL, 166.83, '2026-07-09 20:07:00', 1, 'says "call me after 5"', '2026-11-18 00:54:53');
INSERT INTO customers VALUES ('C00025', 'customer.25@example.com', 'Małgorzata', 'O''Brien', 'Rotterdam', 'Platinum', 1103.05, '2026-09-14 16:09:00', 0, 'prefers e-mail, not phone', '2026-11-19 02:11:29');
INSERT INTO customers VALUES ('C00026', 'anna.26@example.com', 'Anna', 'Jansen', 'Zürich', 'SILVER', 1815.80, '2026-06-08 16:54:00', 0, 'line one
line two', '2026-11-20 09:10:55');
INSERT INTO customers VALUES ('C00027', 'customer.27@example.com', 'Rosalía', 'Łukasiewicz', 'Eindhoven', NULL, 1082.05, '2026-11-16 19:04:00', 1, 'A+ customer / VIP', '2026-11-21 10:42:57');
INSERT INTO customers VALUES ('C00028', 'customer.28@example.com', '李', 'Ferreira', 'Utrecht', 'SILVER', 2281.30, '2026-08-17 19:57:00', 0, 'plus+sign and slash/', '2026-11-18 00:52:54');
INSERT INTO customers VALUES ('C00029', 'ines.29@example.com', 'Ines', 'de Vries', 'Utrecht', 'Gold', 33.78, '2026-07-08 15:10:00', 0, 'comma, separated, note', '2026-11-19 03:12:30');
INSERT INTO customers VALUES ('C00030', 'customer.30@example.com', 'José', 'Bakker', 'Groningen', NULL, 1934.23, '2026-07-07 15:50:00', 1, 'line one
line two', '2026-11-20 05:35:05');
INSERT INTO customers VALUES ('C00031', 'customer.31@example.com', 'Jürgen', '佐藤', 'Rotterdam', NULL, 833.45, '2026-09-06 12:18:00', 0, 'says "call me after 5"', '2026-11-21 14:49:54');
INSERT INTO customers VALUES ('C00032', 'customer.32@example.com', 'Søren', 'Yılmaz', 'Rotterdam', 'SILVER', 627.24, '2026-11-05 15:40:00', 0, 'plus+sign and slash/', '2026-11-18 08:52:12');
INSERT INTO customers VALUES ('C00033', 'customer.33@example.com', 'Jürgen', 'de Vries', 'Eindhoven', 'Platinum', 1298.13, NULL, 1, NULL, '2026-11-19 21:50:09');
INSERT INTO customers VALUES ('C00034', '  customer.34@Example.COM ', 'Xóchitl', 'Nguyễn', 'Eindhoven', 'Gold', 293.05, '2026-08-15 20:45:00', 0, 'prefers e-mail, not phone', '2026-11-20 00:19:20');
INSERT INTO customers VALUES ('C00035', 'vera.35@example.com', 'Vera', 'de Vries', 'Zürich', NULL, 1498.80, '2026-06-17 20:38:00', 0, 'line one
line two', '2026-11-21 13:03:16');
INSERT INTO customers VALUES ('C00036', 'customer.36@example.com', 'Zoë', 'de Vries', 'Amsterdam', NULL, 1788.27, '2026-08-04 11:08:00', 1, NULL, '2026-11-18 19:29:00');
INSERT INTO customers VALUES ('C00037', 'customer.37@example.com', '李', 'de Vries', 'Utrecht', 'Gold', 221.28, '2026-08-12 10:43:00', 0, 'plus+sign and slash/', '2026-11-19 21:59:23');
INSERT INTO customers VALUES ('C00038', 'ines.38@example.com', 'Ines', 'Bakker', 'São Paulo', 'bronze', 2188.62, '2026-08-08 17:27:00', 0, 'a=b&c=d', '2026-11-20 05:06:48');
INSERT INTO customers VALUES ('C00039', 'nuno.39@example.com', 'Nuno', 'Петров', 'Utrecht', 'Platinum', 2028.52, '2026-07-17 12:32:00', 1, NULL, '2026-11-21 16:14:10');
INSERT INTO customers VALUES ('C00040', 'nuno.40@example.com', 'Nuno', 'de Vries', 'Eindhoven', 'SILVER', 1821.53, '2026-08-12 09:52:00', 0, 'tab	inside', '2026-11-18 19:19:11');
INSERT INTO customers VALUES ('C00041', 'hiroshi.41@example.com', 'Hiroshi', 'García', '''s-Hertogenbosch', 'bronze', 342.88, '2026-06-09 10:39:00', 0, 'plus+sign and slash/', '2026-11-19 16:44:30');
INSERT INTO customers VALUES ('C00042', 'customer.42@example.com', '李', 'Łukasiewicz', 'Den Haag', 'Gold', 850.28, '2026-07-16 15:41:00', 1, 'likes 50% discounts & free shipping', '2026-11-20 00:27:47');
INSERT INTO customers VALUES ('C00043', 'ines.43@example.com', 'Ines', 'Bakker', 'Amsterdam', 'Platinum', 1879.57, '2026-10-06 20:38:00', 0, NULL, '2026-11-21 16:38:17');
INSERT INTO customers VALUES ('C00044', 'customer.44@example.com', 'José', 'Yılmaz', 'Köln', 'bronze', 5.69, NULL, 0, 'plus+sign and slash/', '2026-11-18 18:33:39');
INSERT INTO customers VALUES ('C00045', 'customer.45@example.com', 'Tomás', 'Smith-Jones', 'Eindhoven', 'Platinum', 714.05, '2026-11-03 11:54:00', 1, '', '2026-11-19 03:32:26');
INSERT INTO customers VALUES ('C00046', 'customer.46@example.com', 'Xóchitl', 'Łukasiewicz', 'São Paulo', 'SILVER', NULL, '2026-06-02 10:29:00', 0, 'prefers e-mail, not phone', '2026-11-20 07:17:11');
INSERT INTO customers VALUES ('C00047', 'customer.47@example.com', 'Søren', 'Müller', 'Den Haag', NULL, 2183.72, '2026-10-01 10:43:00', 0, 'comma, separated, note', '2026-11-21 11:50:03');
INSERT INTO customers VALUES ('C00048', 'ines.48@example.com', 'Ines', 'Łukasiewicz', 'Den Haag', 'SILVER', 672.13, '2026-08-03 10:21:00', 1, '', '2026-11-18 15:30:20');
INSERT INTO customers VALUES ('C00049', 'customer.49@example.com', 'Zoë', 'Rossi', '''s-Hertogenbosch', 'Platinum', 1355.76, '2026-11-17 12:47:00', 0, '100% € paid', '2026-11-19 00:15:38');
INSERT INTO customers VALUES ('C00050', 'yusuf.50@example.com', 'Yusuf', 'de Vries', 'Den Haag', 'Platinum', 2184.03, '2026-09-08 21:19:00', 0, '', '2026-11-20 21:38:59');
INSERT INTO customers VALUES ('C00051', '  customer.51@Example.COM ', '李', 'Dubois', 'Amsterdam', 'bronze', 1687.85, '2026-09-15 18:56:00', 1, 'A+ customer / VIP', '2026-11-21 01:26:31');
INSERT INTO customers VALUES ('C00052', 'vera.52@example.com', 'Vera', 'Петров', 'Amsterdam', 'SILVER', 803.28, '2026-09-13 21:26:00', 0, 'says "call me after 5"', '2026-11-18 02:33:38');
INSERT INTO customers VALUES ('C00053', 'qiu.53@example.com', 'Qiu', 'O''Brien', 'Groningen', 'Platinum', 776.02, '2026-07-01 18:06:00', 0, 'prefers e-mail, not phone', '2026-11-19 18:19:18');
INSERT INTO customers VALUES ('C00054', 'dmitri.54@example.com', 'Dmitri', 'D''Angelo', 'São Paulo', 'bronze', 131.08, '2026-07-12 16:48:00', 1, 'comma, separated, note', '2026-11-20 10:43:37');
INSERT INTO customers VALUES ('C00055', 'fatima.55@example.com', 'Fatima', 'Smith-Jones', 'Amsterdam', 'bronze', 460.38, NULL, 0, 'says "call me after 5"', '2026-11-21 10:58:41');
INSERT INTO customers VALUES ('C00056', 'giulia.56@example.com', 'Giulia', 'Nowak', 'Utrecht', 'bronze', 1684.17, '2026-06-12 13:32:00', 0, 'a=b&c=d', '2026-11-18 18:30:00');
INSERT INTO customers VALUES ('C00057', 'customer.57@example.com', 'Tomás', 'Yılmaz', 'Utrecht', 'Platinum', 1731.30, '2026-06-12 10:59:00', 1, 'says "call me after 5"', '2026-11-19 14:22:00');
INSERT INTO customers VALUES ('C00058', 'dmitri.58@example.com', 'Dmitri', 'Visser', 'Köln', 'bronze', 141.43, '2026-06-14 09:28:00', 0, '', '2026-11-20 15:07:09');
INSERT INTO customers VALUES ('C00059', 'nuno.59@example.com', 'Nuno', 'Nowak', 'Köln', 'Gold', 1080.31, '2026-08-13 08:26:00', 0, 'prefers e-mail, not phone', '2026-11-21 20:29:26');
INSERT INTO customers VALUES ('C00060', 'customer.60@example.com', 'Małgorzata', 'van den Berg', 'Eindhoven', 'Gold', 1796.89, '2026-07-02 21:51:00', 1, 'A+ customer / VIP', '2026-11-18 11:43:45');
INSERT INTO customers VALUES ('C00061', 'customer.61@example.com', 'Ülkü', 'O''Brien', 'Köln', 'SILVER', 1868.50, '2026-10-05 18:05:00', 0, 'says "call me after 5"', '2026-11-19 04:22:52');
INSERT INTO customers VALUES ('C00062', 'customer.62@example.com', '李', 'Łukasiewicz', 'Eindhoven', NULL, 271.61, '2026-08-09 12:16:00', 0, 'line one
line two', '2026-11-20 17:01:00');
INSERT INTO customers VALUES ('C00063', 'ines.63@example.com', 'Ines', 'Jansen', 'Zürich', 'Platinum', 2237.32, '2026-07-13 13:45:00', 1, 'a=b&c=d', '2026-11-21 20:27:08');
INSERT INTO customers VALUES ('C00064', 'yusuf.64@example.com', 'Yusuf', 'Jansen', 'Rotterdam', NULL, 479.99, '2026-09-11 18:39:00', 0, 'plus+sign and slash/', '2026-11-18 23:47:24');
INSERT INTO customers VALUES ('C00065', 'customer.65@example.com', 'Małgorzata', 'Bakker', 'Köln', 'bronze', 946.53, '2026-08-03 16:01:00', 0, 'line one
line two', '2026-11-19 04:14:08');
INSERT INTO customers VALUES ('C00066', 'nuno.66@example.com', 'Nuno', '佐藤', 'Köln', 'Gold', 1440.49, NULL, 1, 'tab	inside', '2026-11-20 13:35:44');
INSERT INTO customers VALUES ('C00067', 'customer.67@example.com', 'Björn', 'D''Angelo', 'Zürich', 'SILVER', 2082.31, '2026-10-17 20:50:00', 0, 'comma, separated, note', '2026-11-21 21:19:57');
INSERT INTO customers VALUES ('C00068', '  customer.68@Example.COM ', 'Zoë', 'van den Berg', 'Groningen', 'bronze', 924.90, '2026-06-01 15:20:00', 0, 'line one
line two', '2026-11-18 07:36:31');
INSERT INTO customers VALUES ('C00069', 'customer.69@example.com', 'Xóchitl', 'D''Angelo', 'Utrecht', 'Gold', NULL, '2026-08-16 12:09:00', 1, 'a=b&c=d', '2026-11-19 11:06:12');
INSERT INTO customers VALUES ('C00070', 'anna.70@example.com', 'Anna', 'Kowalski', 'Groningen', NULL, 2028.34, '2026-10-17 18:39:00', 0, 'prefers e-mail, not phone', '2026-11-20 23:21:07');
INSERT INTO customers VALUES ('C00071', 'customer.71@example.com', 'Xóchitl', '佐藤', 'Utrecht', 'SILVER', 1742.96, '2026-06-16 16:38:00', 0, 'says "call me after 5"', '2026-11-21 00:58:36');
INSERT INTO customers VALUES ('C00072', 'customer.72@example.com', 'Kateřina', '佐藤', 'Den Haag', NULL, 1299.85, '2026-08-16 17:06:00', 1, 'likes 50% discounts & free shipping', '2026-11-18 13:50:00');
INSERT INTO customers VALUES ('C00073', 'vera.73@example.com', 'Vera', 'Kowalski', 'Rotterdam', 'Gold', 118.07, '2026-06-15 10:23:00', 0, 'comma, separated, note', '2026-11-19 07:26:53');
INSERT INTO customers VALUES ('C00074', 'customer.74@example.com', 'Øystein', 'Ferreira', 'Zürich', 'Gold', 1368.83, '2026-07-04 14:27:00', 0, '', '2026-11-20 14:18:33');
INSERT INTO customers VALUES ('C00075', 'customer.75@example.com', '李', 'Müller', 'Den Haag', 'Gold', 1779.83, '2026-10-10 08:06:00', 1, 'a=b&c=d', '2026-11-21 21:26:37');
INSERT INTO customers VALUES ('C00076', 'anna.76@example.com', 'Anna', 'Ferreira', 'São Paulo', NULL, 182.62, '2026-10-12 10:59:00', 0, 'says "call me after 5"', '2026-11-18 08:06:09');
INSERT INTO customers VALUES ('C00077', 'customer.77@example.com', 'Zoë', 'Rossi', 'Zürich', 'bronze', 118.14, NULL, 0, 'says "call me after 5"', '2026-11-19 12:43:26');
INSERT INTO customers VALUES ('C00078', 'yusuf.78@example.com', 'Yusuf', 'Ferreira', 'Den Haag', 'Gold', 947.60, '2026-07-16 13:34:00', 1, NULL, '2026-11-20 14:58:24');
INSERT INTO customers VALUES ('C00079', 'customer.79@example.com', 'Małgorzata', 'Bakker', '''s-Hertogenbosch', 'bronze', 2320.97, '2026-07-01 20:44:00', 0, 'a=b&c=d', '2026-11-21 18:36:15');
INSERT INTO customers VALUES ('C00080', 'customer.80@example.com', '李', 'Müller', 'Rotterdam', 'Gold', 364.47, '2026-09-05 12:45:00', 0, 'a=b&c=d', '2026-11-18 07:55:19');
INSERT INTO customers VALUES ('C00081', 'customer.81@example.com', 'Björn', 'Yılmaz', 'Köln', 'SILVER', 940.87, '2026-09-02 09:17:00', 1, 'plus+sign and slash/', '2026-11-19 22:50:06');
INSERT INTO customers VALUES ('C00082', 'customer.82@example.com', 'Chloé', 'Nowak', 'Köln', 'Gold', 123.84, '2026-08-08 13:24:00', 0, 'says "call me after 5"', '2026-11-20 22:33:11');
INSERT INTO customers VALUES ('C00083', 'customer.83@example.com', 'Александр', 'Rossi', '''s-Hertogenbosch', 'Platinum', 2084.25, '2026-08-11 10:53:00', 0, '', '2026-11-21 18:21:56');
INSERT INTO customers VALUES ('C00084', 'customer.84@example.com', 'Björn', 'Jansen', 'São Paulo', 'bronze', 274.00, '2026-06-06 21:48:00', 1, 'A+ customer / VIP', '2026-11-18 23:19:26');
INSERT INTO customers VALUES ('C00085', '  customer.85@Example.COM ', 'Tomás', 'D''Angelo', 'Den Haag', NULL, 2224.81, '2026-09-15 13:13:00', 0, 'tab	inside', '2026-11-19 04:39:08');
INSERT INTO customers VALUES ('C00086', 'fatima.86@example.com', 'Fatima', 'Петров', 'Eindhoven', 'bronze', 1643.15, '2026-11-10 21:49:00', 0, 'A+ customer / VIP', '2026-11-20 18:26:59');
INSERT INTO customers VALUES ('C00087', 'customer.87@example.com', 'Kateřina', 'Łukasiewicz', 'Utrecht', 'Platinum', 540.49, '2026-11-06 12:48:00', 1, 'a=b&c=d', '2026-11-21 06:21:22');
INSERT INTO customers VALUES ('C00088', 'customer.88@example.com', 'Rosalía', 'Петров', '''s-Hertogenbosch', 'Platinum', 1141.40, NULL, 0, NULL, '2026-11-18 16:37:21');
INSERT INTO customers VALUES ('C00089', 'giulia.89@example.com', 'Giulia', 'Петров', 'Zürich', 'Platinum', 1303.40, '2026-10-13 12:40:00', 0, 'likes 50% discounts & free shipping', '2026-11-19 11:16:02');
INSERT INTO customers VALUES ('C00090', 'wojciech.90@example.com', 'Wojciech', 'van den Berg', 'Den Haag', 'SILVER', 558.19, '2026-07-10 18:02:00', 1, 'comma, separated, note', '2026-11-20 12:09:38');
INSERT INTO customers VALUES ('C00091', 'customer.91@example.com', 'Ülkü', 'Smith-Jones', 'Amsterdam', 'SILVER', 2122.85, '2026-11-08 13:07:00', 0, 'comma, separated, note', '2026-11-21 03:43:04');
INSERT INTO customers VALUES ('C00092', 'customer.92@example.com', 'Björn', 'Smith-Jones', 'Zürich', 'Platinum', NULL, '2026-11-12 09:31:00', 0, 'says "call me after 5"', '2026-11-18 07:34:12');
INSERT INTO customers VALUES ('C00093', 'customer.93@example.com', 'Björn', 'O''Brien', 'Köln', 'bronze', 213.97, '2026-07-13 20:56:00', 1, 'prefers e-mail, not phone', '2026-11-19 17:31:19');
INSERT INTO customers VALUES ('C00094', 'nuno.94@example.com', 'Nuno', 'Dubois', 'Groningen', 'Gold', 585.13, '2026-08-09 17:13:00', 0, 'comma, separated, note', '2026-11-20 16:54:21');
INSERT INTO customers VALUES ('C00095', 'customer.95@example.com', 'José', 'Visser', '''s-Hertogenbosch', NULL, 796.59, '2026-10-05 10:36:00', 0, 'line one
line two', '2026-11-21 22:34:11');
INSERT INTO customers VALUES ('C00096', 'customer.96@example.com', 'Jürgen', 'Yılmaz', 'Den Haag', 'bronze', 107.19, '2026-07-05 09:58:00', 1, NULL, '2026-11-18 14:34:42');
INSERT INTO customers VALUES ('C00097', 'dmitri.97@example.com', 'Dmitri', 'Kowalski', 'Amsterdam', 'Gold', 741.49, '2026-07-07 14:38:00', 0, 'likes 50% discounts & free shipping', '2026-11-19 16:44:08');
INSERT INTO customers VALUES ('C00098', 'customer.98@example.com', 'Jürgen', 'Nguyễn', 'Zürich', 'Platinum', 1831.58, '2026-09-11 13:50:00', 0, 'plus+sign and slash/', '2026-11-20 22:12:04');
INSERT INTO customers VALUES ('C00099', 'customer.99@example.com', 'Tomás', 'Yılmaz', '''s-Hertogenbosch', 'bronze', 2215.06, NULL, 1, 'a=b&c=d', '2026-11-21 01:25:01');
INSERT INTO customers VALUES ('C00100', 'wojciech.100@example.com', 'Wojciech', 'Nowak', 'Rotterdam', 'SILVER', 2418.16, '2026-09-11 13:50:00', 0, '', '2026-11-18 02:37:46');
INSERT INTO customers VALUES ('C00101', 'customer.101@example.com', 'Rosalía', 'Петров', 'Eindhoven', 'SILVER', 1313.93, '2026-10-12 17:02:00', 0, 'a=b&c=d', '2026-11-19 21:24:55');
INSERT INTO customers VALUES ('C00102', '  hiroshi.102@Example.COM ', 'Hiroshi', 'D''Angelo', 'Groningen', 'Gold', 1004.82, '2026-07-08 11:13:00', 1, 'prefers e-mail, not phone', '2026-11-20 17:07:43');
INSERT INTO customers VALUES ('C00103', 'customer.103@example.com', 'Paweł', 'Smith-Jones', 'Amsterdam', 'Platinum', 1858.90, '2026-11-08 16:18:00', 0, 'line one
line two', '2026-11-21 19:28:24');
INSERT INTO customers VALUES ('C00104', 'customer.104@example.com', 'Александр', 'D''Angelo', 'Rotterdam', 'SILVER', 1328.95, '2026-08-11 08:27:00', 0, 'likes 50% discounts & free shipping', '2026-11-18 07:27:01');
INSERT INTO customers VALUES ('C00105', 'customer.105@example.com', 'José', 'O''Brien', 'São Paulo', 'bronze', 1635.59, '2026-09-01 11:57:00', 1, 'comma, separated, note', '2026-11-19 16:23:43');
INSERT INTO customers VALUES ('C00106', 'customer.106@example.com', 'Jürgen', 'Müller', '''s-Hertogenbosch', 'Platinum', 1367.32, '2026-07-08 18:03:00', 0, '100% € paid', '2026-11-20 01:44:04');
INSERT INTO customers VALUES ('C00107', 'giulia.107@example.com', 'Giulia', 'Jansen', '''s-Hertogenbosch', 'bronze', 1303.79, '2026-11-01 17:09:00', 0, 'a=b&c=d', '2026-11-21 13:18:46');
INSERT INTO customers VALUES ('C00108', 'customer.108@example.com', 'Léa', 'Ferreira', 'Köln', NULL, 297.40, '2026-10-16 08:48:00', 1, 'plus+sign and slash/', '2026-11-18 19:50:29');
INSERT INTO customers VALUES ('C00109', 'customer.109@example.com', 'Rosalía', 'Bakker', 'Rotterdam', 'SILVER', 267.64, '2026-11-06 12:04:00', 0, 'prefers e-mail, not phone', '2026-11-19 17:15:54');
INSERT INTO customers VALUES ('C00110', 'dmitri.110@example.com', 'Dmitri', 'Nguyễn', 'Köln', 'bronze', 2037.61, NULL, 0, '', '2026-11-20 23:09:46');
INSERT INTO customers VALUES ('C00111', 'customer.111@example.com', 'Émile', 'van den Berg', 'Utrecht', 'SILVER', 413.80, '2026-10-05 14:22:00', 1, '', '2026-11-21 00:52:58');
INSERT INTO customers VALUES ('C00112', 'giulia.112@example.com', 'Giulia', 'Visser', 'Zürich', NULL, 1042.45, '2026-08-11 11:55:00', 0, 'comma, separated, note', '2026-11-18 02:12:39');
INSERT INTO customers VALUES ('C00113', 'customer.113@example.com', 'Małgorzata', 'D''Angelo', 'Rotterdam', NULL, 2426.75, '2026-11-01 14:21:00', 0, 'plus+sign and slash/', '2026-11-19 20:01:00');
INSERT INTO customers VALUES ('C00114', 'customer.114@example.com', '李', 'D''Angelo', 'Amsterdam', NULL, 1962.29, '2026-10-03 20:53:00', 1, '100% € paid', '2026-11-20 15:47:38');
INSERT INTO customers VALUES ('C00115', 'customer.115@example.com', 'Jürgen', 'Müller', 'Den Haag', 'Gold', NULL, '2026-10-05 12:34:00', 0, 'line one
line two', '2026-11-21 04:12:38');
INSERT INTO customers VALUES ('C00116', 'customer.116@example.com', 'Rosalía', 'Yılmaz', 'Rotterdam', 'SILVER', 1478.48, '2026-08-09 15:13:00', 0, 'A+ customer / VIP', '2026-11-18 08:44:40');
INSERT INTO customers VALUES ('C00117', 'qiu.117@example.com', 'Qiu', 'D''Angelo', 'Rotterdam', NULL, 2389.26, '2026-08-09 15:23:00', 1, 'comma, separated, note', '2026-11-19 08:15:17');
INSERT INTO customers VALUES ('C00118', 'customer.118@example.com', 'Søren', 'Nguyễn', 'Rotterdam', 'bronze', 716.77, '2026-07-11 10:36:00', 0, 'A+ customer / VIP', '2026-11-20 19:27:19');
INSERT INTO customers VALUES ('C00119', '  customer.119@Example.COM ', 'Søren', 'Smith-Jones', 'Rotterdam', 'Platinum', 1483.13, '2026-10-16 10:25:00', 0, 'prefers e-mail, not phone', '2026-11-21 11:05:53');
INSERT INTO customers VALUES ('C00120', 'hiroshi.120@example.com', 'Hiroshi', 'O''Brien', 'Eindhoven', 'Gold', 1616.39, '2026-10-16 11:58:00', 1, 'comma, separated, note', '2026-11-18 01:15:49');
INSERT INTO customers VALUES ('C00121', 'giulia.121@example.com', 'Giulia', 'Nowak', 'São Paulo', 'bronze', 255.08, NULL, 0, 'likes 50% discounts & free shipping', '2026-11-19 05:13:15');
INSERT INTO customers VALUES ('C00122', 'customer.122@example.com', 'Søren', 'de Vries', 'Amsterdam', NULL, 810.54, '2026-11-08 09:02:00', 0, 'prefers e-mail, not phone', '2026-11-20 15:55:04');
INSERT INTO customers VALUES ('C00123', 'customer.123@example.com', 'Øystein', 'Bakker', 'Den Haag', 'bronze', 1995.34, '2026-08-09 11:36:00', 1, 'A+ customer / VIP', '2026-11-21 19:49:40');
INSERT INTO customers VALUES ('C00124', 'ines.124@example.com', 'Ines', 'Nowak', 'Köln', NULL, 213.84, '2026-06-01 16:46:00', 0, NULL, '2026-11-18 16:48:17');
INSERT INTO customers VALUES ('C00125', 'customer.125@example.com', 'Chloé', 'Łukasiewicz', 'Utrecht', 'bronze', 1172.82, '2026-10-16 15:49:00', 0, '100% € paid', '2026-11-19 13:25:22');
INSERT INTO customers VALUES ('C00126', 'customer.126@example.com', 'Paweł', 'O''Brien', 'Zürich', 'SILVER', 115.70, '2026-08-05 17:32:00', 1, NULL, '2026-11-20 20:02:19');
INSERT INTO customers VALUES ('C00127', 'customer.127@example.com', 'Александр', 'Dubois', '''s-Hertogenbosch', 'Gold', 1999.38, '2026-06-13 15:24:00', 0, '100% € paid', '2026-11-21 19:51:19');
INSERT INTO customers VALUES ('C00128', 'customer.128@example.com', 'Émile', 'García', 'Eindhoven', 'bronze', 441.45, '2026-06-11 10:53:00', 0, 'likes 50% discounts & free shipping', '2026-11-18 05:27:10');
INSERT INTO customers VALUES ('C00129', 'customer.129@example.com', 'José', 'O''Brien', 'Köln', NULL, 428.23, '2026-10-10 15:32:00', 1, 'likes 50% discounts & free shipping', '2026-11-19 02:23:45');
INSERT INTO customers VALUES ('C00130', 'anna.130@example.com', 'Anna', 'Yılmaz', 'Eindhoven', 'Gold', 355.26, '2026-07-05 14:06:00', 0, 'likes 50% discounts & free shipping', '2026-11-20 21:19:07');
INSERT INTO customers VALUES ('C00131', 'hiroshi.131@example.com', 'Hiroshi', 'Müller', 'Köln', 'Platinum', 9.09, '2026-09-08 20:16:00', 0, 'plus+sign and slash/', '2026-11-21 10:40:52');
INSERT INTO customers VALUES ('C00132', 'customer.132@example.com', 'Αθηνά', 'Nowak', 'Köln', 'Gold', 1972.26, NULL, 1, 'plus+sign and slash/', '2026-11-18 05:19:37');
INSERT INTO customers VALUES ('C00133', 'customer.133@example.com', 'Rosalía', 'de Vries', 'Den Haag', 'bronze', 1521.55, '2026-09-02 08:31:00', 0, '', '2026-11-19 19:50:48');
INSERT INTO customers VALUES ('C00134', 'customer.134@example.com', '李', 'Ferreira', 'Köln', 'Gold', 807.85, '2026-07-04 21:35:00', 0, 'line one
line two', '2026-11-20 00:58:37');
INSERT INTO customers VALUES ('C00135', 'customer.135@example.com', 'Paweł', 'Smith-Jones', 'Den Haag', 'Gold', 2129.00, '2026-11-08 15:06:00', 1, 'comma, separated, note', '2026-11-21 18:21:58');
INSERT INTO customers VALUES ('C00136', '  customer.136@Example.COM ', 'Jürgen', 'Nowak', 'Rotterdam', 'SILVER', 2393.61, '2026-09-07 09:42:00', 0, 'tab	inside', '2026-11-18 11:00:37');
INSERT INTO customers VALUES ('C00137', 'customer.137@example.com', 'Kateřina', 'van den Berg', 'Groningen', 'bronze', 755.72, '2026-08-07 09:49:00', 0, 'line one
line two', '2026-11-19 14:22:45');
INSERT INTO customers VALUES ('C00138', 'customer.138@example.com', 'Małgorzata', 'Bakker', 'Rotterdam', NULL, NULL, '2026-10-11 20:25:00', 1, 'plus+sign and slash/', '2026-11-20 06:43:51');
INSERT INTO customers VALUES ('C00139', 'hiroshi.139@example.com', 'Hiroshi', 'van den Berg', 'São Paulo', 'Platinum', 674.65, '2026-11-16 13:20:00', 0, 'a=b&c=d', '2026-11-21 21:55:17');
INSERT INTO customers VALUES ('C00140', 'customer.140@example.com', 'Søren', 'Visser', 'Eindhoven', NULL, 2097.34, '2026-06-01 15:44:00', 0, NULL, '2026-11-18 13:25:24');
INSERT INTO customers VALUES ('C00141', 'customer.141@example.com', 'Ülkü', 'Yılmaz', 'Groningen', 'bronze', 2102.66, '2026-10-01 19:58:00', 1, 'comma, separated, note', '2026-11-19 04:05:30');
INSERT INTO customers VALUES ('C00142', 'vera.142@example.com', 'Vera', 'Rossi', 'São Paulo', NULL, 1451.37, '2026-07-12 19:24:00', 0, 'a=b&c=d', '2026-11-20 21:31:28');
INSERT INTO customers VALUES ('C00143', 'dmitri.143@example.com', 'Dmitri', 'García', '''s-Hertogenbosch', 'Gold', 1535.32, NULL, 0, '', '2026-11-21 13:45:39');
INSERT INTO customers VALUES ('C00144', 'customer.144@example.com', 'Zoë', 'Jansen', 'Amsterdam', 'bronze', 1527.03, '2026-09-14 19:06:00', 1, 'a=b&c=d', '2026-11-18 17:33:26');
INSERT INTO customers VALUES ('C00145', 'yusuf.145@example.com', 'Yusuf', 'O''Brien', 'Amsterdam', 'Gold', 822.80, '2026-09-05 09:06:00', 0, 'a=b&c=d', '2026-11-19 07:03:59');
INSERT INTO customers VALUES ('C00146', 'customer.146@example.com', 'Kateřina', 'D''Angelo', 'Rotterdam', 'Platinum', 1914.71, '2026-09-16 20:01:00', 0, 'likes 50% discounts & free shipping', '2026-11-20 11:29:05');
INSERT INTO customers VALUES ('C00147', 'customer.147@example.com', 'Björn', 'Nguyễn', '''s-Hertogenbosch', 'SILVER', 1806.74, '2026-11-06 08:33:00', 1, '', '2026-11-21 20:34:44');
INSERT INTO customers VALUES ('C00148', 'customer.148@example.com', 'Ülkü', '佐藤', '''s-Hertogenbosch', 'SILVER', 1776.43, '2026-11-09 18:29:00', 0, 'A+ customer / VIP', '2026-11-18 16:08:30');
INSERT INTO customers VALUES ('C00149', 'hiroshi.149@example.com', 'Hiroshi', 'Smith-Jones', 'Eindhoven', 'Platinum', 109.78, '2026-06-05 16:54:00', 0, 'line one
line two', '2026-11-19 15:20:51');
INSERT INTO customers VALUES ('C00150', 'customer.150@example.com', 'Émile', 'Ferreira', 'Groningen', 'bronze', 1396.39, '2026-06-04 17:37:00', 1, '100% € paid', '2026-11-20 20:34:43');
INSERT INTO customers VALUES ('C00151', 'customer.151@example.com', 'Александр', 'Петров', 'Zürich', NULL, 829.81, '2026-10-05 16:28:00', 0, NULL, '2026-11-21 10:59:41');
INSERT INTO customers VALUES ('C00152', 'dmitri.152@example.com', 'Dmitri', 'Rossi', 'Rotterdam', 'SILVER', 2492.88, '2026-07-16 14:35:00', 0, 'likes 50% discounts & free shipping', '2026-11-18 04:57:47');
INSERT INTO customers VALUES ('C00153', '  customer.153@Example.COM ', '李', 'O''Brien', '''s-Hertogenbosch', 'SILVER', 742.22, '2026-09-17 13:21:00', 1, NULL, '2026-11-19 23:31:54');
INSERT INTO customers VALUES ('C00154', 'customer.154@example.com', 'Björn', 'Rossi', 'Groningen', 'SILVER', 2344.19, NULL, 0, 'says "call me after 5"', '2026-11-20 00:40:49');
INSERT INTO customers VALUES ('C00155', 'qiu.155@example.com', 'Qiu', 'Jansen', 'Rotterdam', 'Platinum', 1802.10, '2026-07-11 17:11:00', 0, 'tab	inside', '2026-11-21 08:55:19');
INSERT INTO customers VALUES ('C00156', 'customer.156@example.com', 'Øystein', 'D''Angelo', '''s-Hertogenbosch', 'Platinum', 1489.11, '2026-09-10 12:07:00', 1, 'plus+sign and slash/', '2026-11-18 23:16:05');
INSERT INTO customers VALUES ('C00157', 'nuno.157@example.com', 'Nuno', 'Yılmaz', 'Utrecht', 'Gold', 2362.78, '2026-11-11 08:02:00', 0, 'plus+sign and slash/', '2026-11-19 18:22:40');
INSERT INTO customers VALUES ('C00158', 'anna.158@example.com', 'Anna', 'D''Angelo', 'São Paulo', 'Gold', 297.99, '2026-10-06 13:45:00', 0, 'line one
line two', '2026-11-20 20:33:23');
INSERT INTO customers VALUES ('C00159', 'customer.159@example.com', 'Tomás', 'Nowak', 'São Paulo', 'bronze', 368.22, '2026-11-16 16:55:00', 1, 'prefers e-mail, not phone', '2026-11-21 18:15:41');
INSERT INTO customers VALUES ('C00160', 'anna.160@example.com', 'Anna', 'Jansen', 'São Paulo', 'Gold', 351.18, '2026-08-17 16:45:00', 0, 'says "call me after 5"', '2026-11-18 16:54:36');
INSERT INTO customers VALUES ('C00161', 'customer.161@example.com', 'Xóchitl', 'Łukasiewicz', 'Den Haag', NULL, NULL, '2026-10-11 17:39:00', 0, 'a=b&c=d', '2026-11-19 00:13:13');
INSERT INTO customers VALUES ('C00162', 'customer.162@example.com', 'Chloé', 'Visser', 'Den Haag', 'Platinum', 2457.67, '2026-10-02 13:54:00', 1, 'says "call me after 5"', '2026-11-20 19:52:40');
INSERT INTO customers VALUES ('C00163', 'anna.163@example.com', 'Anna', 'Łukasiewicz', 'Amsterdam', 'bronze', 43.09, '2026-08-02 11:35:00', 0, '', '2026-11-21 14:35:58');
INSERT INTO customers VALUES ('C00164', 'customer.164@example.com', 'Chloé', 'Smith-Jones', 'Zürich', 'Platinum', 1102.05, '2026-09-16 12:18:00', 0, '100% € paid', '2026-11-18 12:50:23');
INSERT INTO customers VALUES ('C00165', 'customer.165@example.com', 'Chloé', 'Yılmaz', 'Rotterdam', 'Platinum', 814.59, NULL, 1, '', '2026-11-19 04:19:01');
INSERT INTO customers VALUES ('C00166', 'customer.166@example.com', 'Zoë', 'Dubois', 'Groningen', NULL, 2277.68, '2026-07-06 15:08:00', 0, 'a=b&c=d', '2026-11-20 21:12:10');
INSERT INTO customers VALUES ('C00167', 'customer.167@example.com', 'Émile', 'Rossi', 'Eindhoven', NULL, 1038.77, '2026-06-10 08:29:00', 0, 'likes 50% discounts & free shipping', '2026-11-21 19:40:19');
INSERT INTO customers VALUES ('C00168', 'customer.168@example.com', 'Rosalía', 'Jansen', 'Köln', 'Gold', 73.03, '2026-07-16 17:41:00', 1, 'line one
line two', '2026-11-18 15:42:11');
INSERT INTO customers VALUES ('C00169', 'customer.169@example.com', 'Александр', 'García', 'Utrecht', 'Platinum', 1514.19, '2026-11-15 08:04:00', 0, '', '2026-11-19 11:50:49');
INSERT INTO customers VALUES ('C00170', '  nuno.170@Example.COM ', 'Nuno', 'D''Angelo', 'Groningen', 'SILVER', 2117.91, '2026-09-16 10:57:00', 0, 'says "call me after 5"', '2026-11-20 03:34:50');
INSERT INTO customers VALUES ('C00171', 'customer.171@example.com', 'Chloé', 'Dubois', 'Amsterdam', 'Gold', 1561.86, '2026-08-15 15:20:00', 1, 'prefers e-mail, not phone', '2026-11-21 04:05:34');
INSERT INTO customers VALUES ('C00172', 'customer.172@example.com', 'Αθηνά', 'Yılmaz', 'Köln', 'Platinum', 820.99, '2026-07-07 12:38:00', 0, 'comma, separated, note', '2026-11-18 11:04:13');
INSERT INTO customers VALUES ('C00173', 'customer.173@example.com', 'Jürgen', 'Müller', 'Den Haag', 'Platinum', 255.20, '2026-09-04 13:34:00', 0, 'A+ customer / VIP', '2026-11-19 09:54:14');
INSERT INTO customers VALUES ('C00174', 'nuno.174@example.com', 'Nuno', 'Smith-Jones', 'Utrecht', 'SILVER', 85.06, '2026-09-03 14:21:00', 1, 'plus+sign and slash/', '2026-11-20 00:06:39');
INSERT INTO customers VALUES ('C00175', 'customer.175@example.com', 'Øystein', 'D''Angelo', 'Eindhoven', 'Gold', 1675.42, '2026-09-07 08:05:00', 0, 'tab	inside', '2026-11-21 21:04:10');
INSERT INTO customers VALUES ('C00176', 'customer.176@example.com', 'Rosalía', 'O''Brien', '''s-Hertogenbosch', 'bronze', 1497.35, NULL, 0, '', '2026-11-18 15:44:05');
INSERT INTO customers VALUES ('C00177', 'customer.177@example.com', 'Jürgen', 'Müller', 'Groningen', 'bronze', 296.59, '2026-09-10 08:36:00', 1, '', '2026-11-19 04:55:16');
INSERT INTO customers VALUES ('C00178', 'customer.178@example.com', 'Kateřina', 'Ferreira', 'Eindhoven', 'bronze', 1591.85, '2026-10-02 20:14:00', 0, NULL, '2026-11-20 01:00:04');
INSERT INTO customers VALUES ('C00179', 'customer.179@example.com', 'Léa', 'de Vries', 'Zürich', 'Gold', 830.44, '2026-11-14 19:21:00', 0, '100% € paid', '2026-11-21 16:24:10');
INSERT INTO customers VALUES ('C00180', 'wojciech.180@example.com', 'Wojciech', 'Bakker', 'Eindhoven', 'Gold', 1933.62, '2026-11-10 16:36:00', 1, 'prefers e-mail, not phone', '2026-11-18 08:24:08');
INSERT INTO customers VALUES ('C00181', 'customer.181@example.com', 'Léa', 'Nowak', 'Eindhoven', 'bronze', 2326.80, '2026-11-14 15:47:00', 0, '100% € paid', '2026-11-19 19:03:36');
INSERT INTO customers VALUES ('C00182', 'customer.182@example.com', 'Zoë', 'Dubois', 'Rotterdam', 'Gold', 1545.16, '2026-09-07 17:17:00', 0, 'A+ customer / VIP', '2026-11-20 09:24:36');
INSERT INTO customers VALUES ('C00183', 'customer.183@example.com', 'Αθηνά', 'Jansen', 'São Paulo', 'Gold', 1221.38, '2026-11-13 15:39:00', 1, '100% € paid', '2026-11-21 15:21:21');
INSERT INTO customers VALUES ('C00184', 'customer.184@example.com', 'Małgorzata', 'Smith-Jones', 'Den Haag', 'bronze', NULL, '2026-06-05 19:52:00', 0, 'plus+sign and slash/', '2026-11-18 17:00:52');
INSERT INTO customers VALUES ('C00185', 'customer.185@example.com', 'Søren', '佐藤', 'Amsterdam', 'SILVER', 1512.76, '2026-11-12 14:23:00', 0, 'tab	inside', '2026-11-19 13:13:19');
INSERT INTO customers VALUES ('C00186', 'customer.186@example.com', 'Αθηνά', 'Dubois', 'Zürich', 'SILVER', 956.84, '2026-10-17 18:44:00', 1, '', '2026-11-20 03:15:48');
INSERT INTO customers VALUES ('C00187', '  dmitri.187@Example.COM ', 'Dmitri', 'Петров', 'Utrecht', NULL, 2427.41, NULL, 0, 'prefers e-mail, not phone', '2026-11-21 14:02:59');
INSERT INTO customers VALUES ('C00188', 'customer.188@example.com', 'Øystein', 'de Vries', 'Amsterdam', NULL, 1127.15, '2026-06-11 17:58:00', 0, 'line one
line two', '2026-11-18 16:49:20');
INSERT INTO customers VALUES ('C00189', 'customer.189@example.com', 'Rosalía', 'O''Brien', 'Zürich', 'bronze', 2357.66, '2026-08-08 15:07:00', 1, '', '2026-11-19 06:57:21');
INSERT INTO customers VALUES ('C00190', 'customer.190@example.com', 'Zoë', 'Dubois', 'Utrecht', 'Gold', 560.29, '2026-11-15 16:53:00', 0, '', '2026-11-20 13:35:36');
INSERT INTO customers VALUES ('C00191', 'customer.191@example.com', 'Émile', 'de Vries', 'São Paulo', 'bronze', 875.93, '2026-06-09 08:20:00', 0, '', '2026-11-21 07:55:49');
INSERT INTO customers VALUES ('C00192', 'customer.192@example.com', 'Zoë', 'Nowak', 'Rotterdam', 'bronze', 1090.35, '2026-07-02 20:33:00', 1, 'plus+sign and slash/', '2026-11-18 05:48:52');
INSERT INTO customers VALUES ('C00193', 'customer.193@example.com', 'Kateřina', 'O''Brien', '''s-Hertogenbosch', 'bronze', 1691.52, '2026-07-03 10:23:00', 0, 'comma, separated, note', '2026-11-19 05:02:11');
INSERT INTO customers VALUES ('C00194', 'customer.194@example.com', 'Tomás', 'Nguyễn', 'Rotterdam', 'Platinum', 1266.72, '2026-09-06 10:06:00', 0, '', '2026-11-20 05:37:24');
INSERT INTO customers VALUES ('C00195', 'fatima.195@example.com', 'Fatima', 'Bakker', 'Köln', 'Gold', 931.89, '2026-09-09 10:25:00', 1, '', '2026-11-21 21:52:05');
INSERT INTO customers VALUES ('C00196', 'customer.196@example.com', 'Tomás', '佐藤', 'Groningen', 'Platinum', 1026.15, '2026-11-01 08:56:00', 0, 'tab	inside', '2026-11-18 04:33:49');
INSERT INTO customers VALUES ('C00197', 'nuno.197@example.com', 'Nuno', 'García', 'Groningen', 'bronze', 2047.09, '2026-07-13 17:26:00', 0, NULL, '2026-11-19 22:20:07');
INSERT INTO customers VALUES ('C00198', 'customer.198@example.com', 'Chloé', 'Müller', 'Köln', 'Gold', 809.02, NULL, 1, '100% € paid', '2026-11-20 22:08:08');
INSERT INTO customers VALUES ('C00199', 'nuno.199@example.com', 'Nuno', 'García', 'Den Haag', 'bronze', 1818.99, '2026-08-03 21:14:00', 0, '100% € paid', '2026-11-21 21:53:56');
INSERT INTO customers VALUES ('C00200', 'dmitri.200@example.com', 'Dmitri', 'O''Brien', 'São Paulo', 'SILVER', 691.56, '2026-06-02 13:07:00', 0, NULL, '2026-11-18 01:07:38');
