.PHONY: run run-lis run-celery stop test bench install clean
run:      ## simulators + Airflow on the embedded default (SQLite), UI on http://127.0.0.1:8080
	bash scripts/run.sh
run-lis:  ## make run, the schedule export as IMS LIS records to a local RabbitMQ over AMQP 1.0 (needs root the first time)
	BRYGGA_SCHEDULE_FORMAT=lis bash scripts/run.sh
run-celery: ## scale-out: CeleryExecutor, 2 workers, PostgreSQL + Redis (needs root the first time)
	bash scripts/run-celery.sh
stop:     ## stop everything make run started (also what a killed make run left behind)
	bash scripts/stop.sh
test:     ## the whole test suite
	bash scripts/test.sh
install:  ## only create .venv and install
	bash scripts/bootstrap.sh
bench:    ## benchmarks; results in bench/results/
	bash scripts/bootstrap.sh && .venv/bin/python -m bench
clean:
	rm -rf var .pytest_cache
