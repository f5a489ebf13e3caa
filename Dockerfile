FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY schemas schemas
COPY twin twin
COPY stream stream
COPY agents agents
RUN pip install --no-cache-dir -c constraints.txt .
USER nobody
CMD ["twinstream", "worker"]
