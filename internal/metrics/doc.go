// Package metrics exposes the worker's Prometheus metrics: the seed's key numbers (success
// rate, retry rate, time in OPEN, mean time to recovery, alert frequency) and what an operator
// of a queue worker expects besides (queue depth, dead letters, in-flight work, bulkheads).
//
// Nothing is global: New registers every collector on the Registerer it is given, so tests use
// their own registry and two workers in one process do not collide. Every method is safe for
// concurrent use, and every method of a nil *Metrics does nothing, so code paths can call it
// whether or not metrics are enabled.
//
// # Metrics
//
//	callagent_build_info{version,goversion,revision}      gauge     always 1: which build runs
//	callagent_contacts_processed_total{outcome}          counter   completed, already_completed, retried,
//	                                                                dead_lettered, held, released,
//	                                                                handed_back
//	callagent_contacts_in_flight                          gauge     contacts being processed now
//	callagent_provider_attempts_total{provider,result}    counter   one per provider call; result is "ok" or
//	                                                                the error category (fault.Kind string,
//	                                                                "canceled")
//	callagent_provider_retries_total{provider,category}   counter   in-process retries, by the category of the
//	                                                                failure that caused them
//	callagent_step_duration_seconds{provider,step,result} histogram one step (its retries included); result
//	                                                                ok or error
//	callagent_dead_letters_total{reason}                  counter   dead-letter reason (fault.Kind string,
//	                                                                max_deliveries, circuit_open, internal)
//	callagent_alerts_total{channel,result}                counter   alert deliveries by channel and result:
//	                                                                sent, retried, deferred, dropped, filtered
//	callagent_alert_events_total{result}                  counter   alert events raised: published to the
//	                                                                alerts stream, dropped, failed
//	callagent_breaker_state{provider}                     gauge     0 closed, 1 half-open, 2 open
//	callagent_breaker_transitions_total{provider,from,to} counter   states as closed, half_open, open
//	callagent_breaker_open_seconds_total{provider}        counter   time spent OPEN, the current period
//	                                                                included
//	callagent_breaker_recovery_seconds{provider}          histogram first OPEN to CLOSED (MTTR)
//	callagent_bulkhead_in_use{provider}                   gauge     concurrency slots held now
//	callagent_bulkhead_limit{provider}                    gauge     concurrency slots in all
//	callagent_consumer_pending_messages{stream,consumer}  gauge     contacts not yet delivered (queue depth)
//	callagent_consumer_ack_pending_messages{stream,consumer} gauge  contacts delivered and not yet acked
//	callagent_consumer_info_errors_total                  counter   consumer or stream reads that failed at
//	                                                                scrape
//	callagent_consumer_paused{stream,consumer}            gauge     1 while the consumer is paused
//	callagent_oldest_pending_age_seconds{stream}          gauge     age of the oldest contact not done yet
//	callagent_sheets_rows_total{result}                   counter   Google Sheets log rows: appended,
//	                                                                dropped_full, dropped_error
//	callagent_llm_tokens_total{provider,model,type}       counter   LLM tokens: prompt, completion, cached,
//	                                                                reasoning
//	callagent_tts_characters_total{provider,model}        counter   text-to-speech characters billed
//
// Counters start at zero for every label value known in advance, so that increase() and
// rate() see the first event: the outcomes and dead-letter reasons in New, a provider's
// attempt results and retry categories in AddProvider, its step durations in AddStep, the
// alert channels' results in AddAlertChannels. The spend counters start with a provider's
// first answer, which names the model.
//
// Labels are low-cardinality by construction: providers, steps, channels and reasons are
// short names chosen by the code, and a free-form value that does not look like one (for
// example a contact id passed by mistake) is counted as "other". No metric carries a contact
// id, a phone number or a secret.
//
// Every worker replica exports the consumer's pending counts, its paused state and the oldest
// pending age, which are the same for the whole fleet: aggregate them with max, not sum.
package metrics
