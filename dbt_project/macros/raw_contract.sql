{#-
    The raw data contract: one file per table in var('raw_dir'), CSV or Parquet by extension.
    `required` tables must exist; `key_columns` must exist in any file that is present. A missing
    optional table lands as an empty table and a missing optional column as all-null.
-#}
{% macro raw_contract() %}
    {{ return({
        'customers': {
            'required': true,
            'key_columns': ['customer_id'],
            'columns': ['customer_id', 'created_at', 'updated_at', 'email', 'birth_date', 'gender',
                        'region', 'city', 'income', 'marketing_opt_in', 'acquisition_channel'],
        },
        'orders': {
            'required': true,
            'key_columns': ['order_id', 'customer_id', 'ordered_at'],
            'columns': ['order_id', 'customer_id', 'ordered_at', 'status', 'order_total',
                        'discount_total', 'channel'],
        },
        'order_items': {
            'required': false,
            'key_columns': ['order_id', 'product_id'],
            'columns': ['order_id', 'product_id', 'quantity', 'unit_price'],
        },
        'products': {
            'required': false,
            'key_columns': ['product_id'],
            'columns': ['product_id', 'category', 'brand', 'list_price'],
        },
        'web_events': {
            'required': false,
            'key_columns': ['event_id'],
            'columns': ['event_id', 'customer_id', 'session_id', 'event_type', 'event_at',
                        'product_id'],
        },
        'campaign_touches': {
            'required': false,
            'key_columns': ['touch_id', 'customer_id'],
            'columns': ['touch_id', 'campaign_id', 'customer_id', 'channel', 'sent_at', 'opened_at',
                        'clicked_at', 'is_control'],
        },
    }) }}
{% endmacro %}
