DROP TABLE execution_steps;
DROP TABLE executions;
