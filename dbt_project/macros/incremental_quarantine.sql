{#-
    Incremental quarantine screening (DuckDB): int_raw_rows_screened screens again only the raw
    rows whose findings a run can change, with the bookkeeping of incremental staging
    (macros/incremental_staging.sql: raw_history.loaded_files under the model's own name).

    A row's findings depend on the row, on when the files were landed (a row stamped after it is
    rejected as in the future), on the customers (orphan_customer_id, ordered_before_signup) and,
    for an order line, on whether its order is staged (orphan_order_id). Between runs, without a
    file changed or gone, these only move one way: time passes, customers and staged orders
    arrive. So a run screens, per raw table:
      - the rows of the files it has not screened (they have no findings yet);
      - again, the rows of the keys (the contract's first column) whose finding may no longer
        hold: rejected as in the future; orphan_customer_id while the customer now exists;
        ordered_before_signup while the customer has rows in new files or a sign-up that was in
        the future then; orphan_order_id while the order is now staged. Their findings are
        deleted first: dbt's delete+insert would delete only the keys that still have one.
    customers, products and campaign_touches (their base views carry no source_file) are
    screened whole when any of that applies to them, and not at all otherwise.
    A file changed since screened screens its table whole (and order lines with orders; and
    everything with customers, or with orders when customers are derived from them). A file
    gone, a customer forgotten, a customers file where there was none, or no file recorded yet
    (the table built before it was incremental) screens everything, as does `segmart build
    --full-refresh`: needed too after changing the vars or vocabularies the rules read, as for
    staging. Only filters on source_file and on the key expression reach the
    Parquet scan before raw_record is serialised, so the keys and files are literal lists.
-#}

{#- More keys than this to screen again in a table screen it whole: a literal list that long
    costs more than it saves. -#}
{% macro _max_keys_rescreened() %}{{ return(20000) }}{% endmacro %}


{#- The raw tables whose base view carries no source_file: screened whole or not at all. -#}
{% macro _tables_screened_whole() %}
    {{ return(['customers', 'products', 'campaign_touches']) }}
{% endmacro %}


{#- True when every row is screened again (see the top of this file). -#}
{% macro must_rescreen_whole() -%}
    (
        {{ must_rebuild_whole(raw_contract().keys() | list) }}
        or exists (select 1 from ({{ _changed_files('customers') }}) as changed)
        {#- The table was built before it recorded its files (a table, not incremental then). -#}
        or not exists (
            select 1 from raw_history.loaded_files where model_name = '{{ this.identifier }}'
        )
        or (
            exists (select 1 from raw.files where table_name = 'customers')
            and not exists (
                select 1 from raw_history.loaded_files
                where model_name = '{{ this.identifier }}' and table_name = 'customers'
            )
        )
    )
{%- endmacro %}


{#- Per raw table, the keys whose findings may no longer hold (see the top of this file). A
    customer's first valid sign-up only moves earlier while no customers file changes: rows in
    new files, or a sign-up in the future at the last run and valid now. -#}
{% macro _keys_to_recheck_sql(new_customer_files) -%}
    {#- Inner joins, not `in`: the findings are the small side, hashed once; the staged orders
        and the customers are only scanned. -#}
    select distinct source_table, row_key from (
        select source_table, row_key from {{ this }}
        where
            rule in ('ordered_in_future', 'event_in_future', 'created_in_future', 'sent_in_future')
        union all
        select findings.source_table, findings.row_key
        from {{ this }} as findings
        inner join {{ ref('base_shop__customer_ids') }} as customers
            on findings.customer_id = customers.customer_id
        where findings.rule = 'orphan_customer_id'
        union all
        select findings.source_table, findings.row_key
        from {{ this }} as findings
        inner join (
            select distinct {{ clean_text('customer_id') }} as customer_id
            from {{ source('shop', 'customers') }}
            where
                {% if new_customer_files -%}
                source_file in {{ _literal_list(new_customer_files) }} or
                {% endif -%}
                {{ parse_timestamp('created_at') }} > {{ last_loaded_at() }}
        ) as signed_up_earlier
            on findings.customer_id = signed_up_earlier.customer_id
        where findings.rule = 'ordered_before_signup'
        union all
        select findings.source_table, findings.row_key
        from {{ this }} as findings
        inner join {{ ref('stg_shop__orders') }} as staged_orders
            on findings.row_key = staged_orders.order_id
        where findings.rule = 'orphan_order_id'
    ) as findings_to_recheck
    where row_key is not null
{%- endmacro %}


{#- What this incremental run screens, per raw table: whole (bool), the files it has not
    screened, and the keys to screen again. Queried when the model and its pre_hook are
    rendered, before either writes. -#}
{% macro screening_plan() %}
    {% set plan = {} %}
    {% for table_name in raw_contract() %}
        {% do plan.update({table_name: {'whole': false, 'new_files': [], 'keys': []}}) %}
    {% endfor %}
    {% if not execute %}{{ return(plan) }}{% endif %}
    {% set changed = _note_files_to_screen(plan) %}
    {% set everything = run_query("select " ~ must_rescreen_whole()).columns[0].values()[0] %}
    {% for row in run_query(_keys_to_recheck_sql(plan.customers.new_files)).rows %}
        {% do plan[row[0]]['keys'].append(row[1]) %}
    {% endfor %}
    {% for table_name, table_plan in plan.items() %}
        {% do table_plan.update({'whole': everything
            or _depends_on_changed_files(table_name, changed)
            or table_plan['keys'] | length > _max_keys_rescreened()
            or (table_name in _tables_screened_whole()
                and (table_plan['keys'] or _has_rows_in(table_name, table_plan.new_files)))}) %}
    {% endfor %}
    {{ return(plan) }}
{% endmacro %}


{#- Notes each table's files never screened in `plan`; returns the tables with a file changed
    since screened. -#}
{% macro _note_files_to_screen(plan) %}
    {% set files = run_query(_new_or_changed_files(raw_contract().keys() | list)) %}
    {% set changed = [] %}
    {% for row in files.rows %}
        {% if row[2] %}{% do plan[row[0]].new_files.append(row[1]) %}
        {% else %}{% do changed.append(row[0]) %}{% endif %}
    {% endfor %}
    {{ return(changed) }}
{% endmacro %}


{#- Whether a changed file may have changed this table's findings anywhere: its own, its
    orders' for order lines, and the customers' when they are derived from the orders. -#}
{% macro _depends_on_changed_files(table_name, changed) %}
    {% if table_name in changed %}{{ return(true) }}{% endif %}
    {% if 'orders' not in changed %}{{ return(false) }}{% endif %}
    {% set has_customers_file = run_query(
        "select count(*) > 0 from raw.files where table_name = 'customers'"
    ).columns[0].values()[0] %}
    {{ return(table_name == 'order_items' or not has_customers_file) }}
{% endmacro %}


{% macro _has_rows_in(table_name, files) %}
    {% if not files %}{{ return(false) }}{% endif %}
    {{ return(run_query(
        "select count(*) > 0 from raw." ~ table_name ~ " where source_file in "
        ~ _literal_list(files)
    ).columns[0].values()[0]) }}
{% endmacro %}


{#- The filter of a raw table's rows in int_raw_rows_screened: every row on a full build; on
    an incremental run the rows of its plan (screening_plan). -#}
{% macro rows_to_rescreen(plan, source_table, key_column) %}
    {% if not is_incremental() %}{{ return('true') }}{% endif %}
    {% set table_plan = plan[source_table] %}
    {% if table_plan.whole %}{{ return('true') }}{% endif %}
    {% if source_table in _tables_screened_whole() %}{{ return('false') }}{% endif %}
    {% set parts = [] %}
    {% if table_plan.new_files %}
        {% do parts.append('source_file in ' ~ _literal_list(table_plan.new_files)) %}
    {% endif %}
    {% if table_plan['keys'] %}
        {% do parts.append(key_column ~ ' in ' ~ _literal_list(table_plan['keys'])) %}
    {% endif %}
    {{ return('(' ~ (parts | join(' or ') or 'false') ~ ')') }}
{% endmacro %}


{#- pre_hook: delete the findings the run screens again (rows of new files have none). -#}
{% macro delete_findings_to_rescreen() %}
    {% if not is_incremental() %}{{ return('') }}{% endif %}
    {% set statements = [] %}
    {% for source_table, table_plan in screening_plan().items() %}
        {% if table_plan.whole %}
            {% do statements.append("delete from " ~ this ~ " where source_table = '"
                ~ source_table ~ "'") %}
        {% elif table_plan['keys'] %}
            {% do statements.append("delete from " ~ this ~ " where source_table = '"
                ~ source_table ~ "' and row_key in " ~ _literal_list(table_plan['keys'])) %}
        {% endif %}
    {% endfor %}
    {{ return(statements | join('; ')) }}
{% endmacro %}


{#- post_hook: remember the files screened, as record_loaded_files does but without each file's
    latest row: that scans every raw row (5 s at 1M customers), and a changed file is screened
    whole here, never through the look-back that reads it. -#}
{% macro record_screened_files() %}
    {% if target.type != 'duckdb' %}{{ return('') }}{% endif %}
    {{ return(
        "delete from raw_history.loaded_files where model_name = '" ~ this.identifier ~ "';"
        ~ " insert into raw_history.loaded_files select '" ~ this.identifier ~ "', table_name,"
        ~ " file_path, file_size, modified_at, loaded_at, cast(null as timestamp),"
        ~ " cast(null as timestamp) from raw.files"
    ) }}
{% endmacro %}
