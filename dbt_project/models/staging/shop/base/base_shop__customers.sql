with

source as (

    select * from {{ source('shop', 'customers') }}

),

renamed as (

    select
        -- ids
        {{ clean_text('source.customer_id') }} as customer_id,

        -- strings
        {{ clean_lower('source.email') }} as email,
        {{ vocabulary_value('gender_vocabulary', 'source.gender') }} as gender,
        {{ vocabulary_value('region_vocabulary', 'source.region') }} as region,
        {{ clean_text('source.city') }} as city,
        {{ vocabulary_value('channel_vocabulary', 'source.acquisition_channel') }}
            as acquisition_channel,

        -- numerics
        try_cast(source.income as double) as income,

        -- booleans
        {{ parse_bool('source.marketing_opt_in') }} as is_marketing_opt_in,
        -- Named as in the contract: an unparsable value is found by that name and quarantined.
        {{ parse_bool('source.email_consent') }} as email_consent,
        {{ parse_bool('source.sms_consent') }} as sms_consent,
        {{ parse_bool('source.push_consent') }} as push_consent,
        {{ clean_text('source.email_consent') }} is not null as is_email_consent_stated,
        {{ clean_text('source.sms_consent') }} is not null as is_sms_consent_stated,
        {{ clean_text('source.push_consent') }} is not null as is_push_consent_stated,

        -- dates and timestamps
        try_cast(source.birth_date as date) as birth_date,
        {{ parse_timestamp('source.created_at') }} as created_at,
        {{ parse_timestamp('source.updated_at') }} as updated_at,

        {{ raw_record('source', 'customers') }} as raw_record

    from source
    {{ join_vocabulary('gender_vocabulary', 'gender', 'source.gender') }}
    {{ join_vocabulary('region_vocabulary', 'region', 'source.region') }}
    {{ join_vocabulary(
        'channel_vocabulary', 'acquisition_channel', 'source.acquisition_channel'
    ) }}

),

flagged as (

    select
        *,
        case
            -- A sign-up time that is missing or unparsable is derived from the first order.
            when customer_id is null then 'missing_customer_id'
            when created_at > {{ loaded_at() }} then 'created_in_future'
            when created_at < {{ date_var('min_valid_date') }} then 'created_before_min_date'
        end as rejection_reason

    from renamed

)

select * from flagged
