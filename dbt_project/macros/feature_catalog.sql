{#-
    The customer features, in mart column order. `log1p`: heavy-tailed money or counts, log1p'd
    before scaling. `imputable`: may be missing (no orders yet, no touches, unknown age), so it is
    imputed and gets a `<name>_was_missing` flag. Changing this list changes the contracts of
    customer_features and training_examples (models/marts/ml/_ml__models.yml), which
    tests/integration/test_feature_catalog_contracts.py checks against it.
-#}
{% macro feature_catalog() %}
    {{ return([
        {'name': 'days_since_last_order', 'log1p': false, 'imputable': true},
        {'name': 'n_orders', 'log1p': true, 'imputable': false},
        {'name': 'n_orders_30d', 'log1p': true, 'imputable': false},
        {'name': 'n_orders_90d', 'log1p': true, 'imputable': false},
        {'name': 'n_orders_365d', 'log1p': true, 'imputable': false},
        {'name': 'revenue', 'log1p': true, 'imputable': true},
        {'name': 'revenue_90d', 'log1p': true, 'imputable': true},
        {'name': 'avg_order_value', 'log1p': true, 'imputable': true},
        {'name': 'tenure_days', 'log1p': false, 'imputable': false},
        {'name': 'avg_days_between_orders', 'log1p': false, 'imputable': true},
        {'name': 'n_orders_prev_90d', 'log1p': true, 'imputable': false},
        {'name': 'order_rate_trend_90d', 'log1p': true, 'imputable': true},
        {'name': 'recency_to_gap_ratio', 'log1p': true, 'imputable': true},
        {'name': 'avg_items_per_order', 'log1p': true, 'imputable': true},
        {'name': 'n_distinct_categories', 'log1p': false, 'imputable': false},
        {'name': 'top_category_share', 'log1p': false, 'imputable': true},
        {'name': 'discount_share', 'log1p': false, 'imputable': true},
        {'name': 'cancel_rate', 'log1p': false, 'imputable': true},
        {'name': 'return_rate', 'log1p': false, 'imputable': true},
        {'name': 'n_sessions_90d', 'log1p': true, 'imputable': false},
        {'name': 'n_product_views_90d', 'log1p': true, 'imputable': false},
        {'name': 'n_add_to_cart_90d', 'log1p': true, 'imputable': false},
        {'name': 'cart_to_order_rate_90d', 'log1p': false, 'imputable': true},
        {'name': 'days_since_last_visit', 'log1p': false, 'imputable': true},
        {'name': 'n_touches_90d', 'log1p': true, 'imputable': false},
        {'name': 'open_rate_90d', 'log1p': false, 'imputable': true},
        {'name': 'click_rate_90d', 'log1p': false, 'imputable': true},
        {'name': 'age_years', 'log1p': false, 'imputable': true},
        {'name': 'income', 'log1p': true, 'imputable': true},
    ]) }}
{% endmacro %}

{#-
    Categorical features, one-hot encoded over levels learned from the training population
    (feature_stats, kind 'onehot_level'): the most frequent values with a training share of at
    least var('onehot_min_share'), at most var('onehot_max_levels') of them; everything else,
    including values first seen at scoring, goes to `<categorical>__other`. A missing value is
    the level 'unknown' (int_customer_snapshots_featurized). Each categorical has
    onehot_slots() fixed columns `<categorical>__level_<i>`, slot i holding the i-th most
    frequent learned level (all zeros when fewer were learned), so the mart contracts do not
    depend on the data.
-#}
{% macro onehot_categoricals() %}
    {{ return(['gender', 'region', 'acquisition_channel']) }}
{% endmacro %}

{#- Level columns per categorical in the ML marts: the most var('onehot_max_levels') may be. -#}
{% macro onehot_slots() %}
    {{ return(8) }}
{% endmacro %}

{#- The one-hot columns of the ML marts for one categorical, in mart order. -#}
{% macro onehot_columns(categorical) %}
    {%- set columns = [] -%}
    {%- for slot in range(1, onehot_slots() + 1) -%}
        {%- do columns.append(categorical ~ '__level_' ~ slot) -%}
    {%- endfor -%}
    {%- do columns.append(categorical ~ '__other') -%}
    {{ return(columns) }}
{% endmacro %}

{#- var('onehot_max_levels'), checked against the slots the marts have. -#}
{% macro onehot_max_levels() %}
    {%- set max_levels = var('onehot_max_levels') -%}
    {%- if max_levels is not number or max_levels != max_levels | int
        or max_levels < 1 or max_levels > onehot_slots() -%}
        {%- do exceptions.raise_compiler_error(
            "var onehot_max_levels must be a whole number from 1 to " ~ onehot_slots()
            ~ " (the level columns of the ML marts), got: " ~ max_levels) -%}
    {%- endif -%}
    {{ return(max_levels | int) }}
{% endmacro %}

{#- var('onehot_min_share') as a SQL double, checked to be a share. -#}
{% macro onehot_min_share() %}
    {%- set min_share = var('onehot_min_share') -%}
    {%- if min_share is not number or min_share < 0 or min_share > 1 -%}
        {%- do exceptions.raise_compiler_error(
            "var onehot_min_share must be a number from 0 to 1, got: " ~ min_share) -%}
    {%- endif -%}
    {{ return('cast(' ~ min_share ~ ' as double)') }}
{% endmacro %}
