"""The built-in evaluator: an eval suite's cases sent to a revision through the OpenAI API, its
answers scored with the shared checks; run by the operator as a Job before any traffic."""
