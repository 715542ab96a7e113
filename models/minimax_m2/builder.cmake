# Graph builder library (owner fills in: MMMiniMaxM2Builder from Builder.cpp)
