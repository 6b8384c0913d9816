"""Real shops' exports written from a generated shop: Shopify's orders export, a European CSV."""

from __future__ import annotations

from pathlib import Path

import duckdb

# Shopify's orders export header, as Shopify documents it (Orders > Export).
SHOPIFY_HEADER = (
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing City",
    "Billing Country",
    "Shipping City",
    "Shipping Country",
    "Notes",
    "Cancelled at",
    "Payment Method",
    "Refunded Amount",
    "Vendor",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
)


def _clean_shop(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> None:
    """Views of the generated shop's clean rows (the generator's dirt is not the point here)."""
    for table in ("customers", "orders", "order_items", "products"):
        path = raw_dir / f"{table}.parquet"
        con.execute(f"create view {table} as select * from read_parquet('{path}')")
    con.execute(
        "create view good_orders as select orders.* from orders"
        " inner join (select distinct customer_id, email from customers where email like '%@%')"
        " as known using (customer_id)"
        " where try_cast(ordered_at as timestamp) between '2020-01-01' and '2030-01-01'"
        " and lower(status) in ('completed', 'cancelled', 'returned')"
        " and try_cast(order_total as decimal(18, 2)) >= 0"
        " qualify row_number() over (partition by order_id) = 1"
    )


def write_shopify_export(raw_dir: Path, out_dir: Path) -> Path:
    """One row per line item, the order's fields on its first row only, customers by Email."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    _clean_shop(con, raw_dir)
    first = "row_number() over (partition by o.order_id order by i.product_id) = 1"
    columns = {
        "Name": "'#' || o.order_id",
        "Email": f"case when {first} then c.email end",
        "Financial Status": f"case when {first} then case lower(o.status) when 'returned'"
        " then 'refunded' else 'paid' end end",
        "Accepts Marketing": f"case when {first} then case when c.marketing_opt_in::varchar"
        " in ('true', '1') then 'yes' else 'no' end end",
        "Currency": f"case when {first} then 'EUR' end",
        "Total": f"case when {first} then o.order_total::varchar end",
        "Discount Amount": f"case when {first} then coalesce(o.discount_total::varchar, '0') end",
        "Created at": f"case when {first} then strftime(try_cast(o.ordered_at as timestamp)"
        " + interval 2 hour, '%Y-%m-%d %H:%M:%S') || ' +0200' end",
        "Lineitem quantity": "i.quantity::varchar",
        "Lineitem name": "'Product ' || i.product_id",
        "Lineitem price": "i.unit_price::varchar",
        "Lineitem sku": "i.product_id",
        "Cancelled at": f"case when {first} and lower(o.status) = 'cancelled'"
        " then strftime(try_cast(o.ordered_at as timestamp), '%Y-%m-%d %H:%M:%S') || ' +0000' end",
        "Refunded Amount": f"case when {first} then case when lower(o.status) = 'returned'"
        " then o.order_total::varchar else '0.00' end end",
        "Vendor": "p.brand",
        "Id": "o.order_id",
    }
    select = ", ".join(f'{columns.get(name, "null")} as "{name}"' for name in SHOPIFY_HEADER)
    path = out_dir / "orders_export.csv"
    con.execute(
        f"copy (select {select} from good_orders as o"
        " inner join (select distinct on (customer_id) * from customers) as c using (customer_id)"
        " inner join order_items as i on i.order_id = o.order_id"
        " left join (select distinct on (product_id) * from products) as p"
        " on p.product_id = i.product_id"
        " where try_cast(i.quantity as integer) > 0) to"
        f" '{path}' (header, quote '\"', force_quote *)"
    )
    return path


EUROPEAN_MAPPING = """\
files:
  kunden:
    path: kunden.csv
    encoding: latin-1
    delimiter: ";"
    decimal: ","
    timestamp_format: "%d.%m.%Y %H:%M"
  bestellungen:
    path: bestellungen.csv
    encoding: latin-1
    delimiter: ";"
    decimal: ","
    timestamp_format: "%d.%m.%Y %H:%M"
tables:
  customers:
    file: kunden
    columns:
      customer_id: Kundennummer
      created_at: Angelegt am
      city: Ort
      region: Bundesland
      marketing_opt_in: {column: Werbung, values: {ja: "true", nein: "false"}}
  orders:
    file: bestellungen
    columns:
      order_id: Bestellnummer
      customer_id: Kundennummer
      ordered_at: Bestellt am
      order_total: Betrag
      status: {column: Status, values: {abgeschlossen: completed, storniert: cancelled,
                                        retour: returned}}
"""

ACCENTED_CITIES = ("Zürich Société", "Köln-Mülheim", "Besançon", "Málaga", "Sankt Pölten")


def write_european_export(raw_dir: Path, out_dir: Path, n_accented: int = 50) -> Path:
    """`;`-separated, decimal commas, Latin-1, German headers; accents in some cities."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    _clean_shop(con, raw_dir)
    when = "strftime(try_cast({} as timestamp), '%d.%m.%Y %H:%M')"
    con.execute(
        "create table kunden as select customer_id as Kundennummer,"
        f' {when.format("created_at")} as "Angelegt am",'
        " case when row_number() over (order by customer_id) <= ?"
        f" then list_extract({list(ACCENTED_CITIES)}, (hash(customer_id) % 5)::int + 1)"
        " else coalesce(city, '') end as Ort,"
        " case hash(customer_id) % 3 when 0 then 'Bayern' when 1 then 'Île-de-France'"
        " else 'Tirol' end as Bundesland,"
        " case when marketing_opt_in::varchar in ('true', '1') then 'ja' else 'nein' end"
        " as Werbung"
        " from (select distinct on (customer_id) * from customers"
        " where try_cast(created_at as timestamp) between '2020-01-01' and '2030-01-01'"
        " and customer_id in (select customer_id from good_orders))",
        [n_accented],
    )
    con.execute(
        "create table bestellungen as select order_id as Bestellnummer,"
        " customer_id as Kundennummer,"
        f' {when.format("ordered_at")} as "Bestellt am",'
        " replace(order_total::varchar, '.', ',') as Betrag,"
        " case lower(status) when 'completed' then 'abgeschlossen'"
        " when 'cancelled' then 'storniert' else 'retour' end as Status"
        " from good_orders inner join (select distinct on (customer_id) customer_id, created_at"
        " from customers) as signed_up using (customer_id)"
        " where customer_id in (select Kundennummer from kunden)"
        # The generator's orders before sign-up are dirt of its own, quarantined: not the point.
        " and try_cast(ordered_at as timestamp) >= try_cast(signed_up.created_at as timestamp)"
    )
    for table in ("kunden", "bestellungen"):
        text = con.execute(f"select * from {table}").fetch_df().to_csv(sep=";", index=False)
        (out_dir / f"{table}.csv").write_bytes(text.encode("latin-1"))
    (out_dir / "mapping.yml").write_text(EUROPEAN_MAPPING, encoding="utf-8")
    return out_dir
