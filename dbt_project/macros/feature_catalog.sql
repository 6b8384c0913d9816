{#-
    The customer features, in mart column order. `log1p`: heavy-tailed money or counts, log1p'd
    before scaling. `imputable`: may be missing (no orders yet, no touches, unknown age), so it is
    imputed and gets a `<name>_was_missing` flag. Changing this list changes the contracts of
    customer_features and training_examples (models/marts/ml/_ml__models.yml).
-#}
{% macro feature_catalog() %}
    {{ return([
        {'name': 'days_since_last_order', 'log1p': false, 'imputable': true},
        {'name': 'n_orders', 'log1p': true, 'imputable': false},
        {'name': 'n_orders_30d', 'log1p': true, 'imputable': false},
        {'name': 'n_orders_90d', 'log1p': true, 'imputable': false},
        {'name': 'n_orders_365d', 'log1p': true, 'imputable': false},
        {'name': 'revenue', 'log1p': true, 'imputable': false},
        {'name': 'revenue_90d', 'log1p': true, 'imputable': false},
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

{#- Categorical features one-hot encoded over fixed levels; anything else goes to `other`. -#}
{% macro categorical_levels() %}
    {{ return({
        'gender': ['female', 'male', 'non_binary', 'unknown'],
        'region': ['north', 'south', 'east', 'west', 'central', 'unknown'],
        'acquisition_channel': ['organic', 'paid_search', 'social', 'referral', 'email',
                                'affiliate', 'unknown'],
    }) }}
{% endmacro %}
