{# Features computed over a day are known only once the day is over. #}
{% macro day_end(column) -%}
date_trunc('day', {{ column }}) + INTERVAL 1 DAY
{%- endmacro %}
